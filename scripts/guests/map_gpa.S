/*
 * map_gpa: KVM_HC_MAP_GPA_RANGE(gpa = rdi, npages = rsi, attrs = rdx) with vmcall (KVM's hypercall
 * ABI: nr in rax, args in rbx, rcx, rdx); ucall done(return value in rax). Long mode ELF.
 */
	.include "abi.inc"
	.set KVM_HC_MAP_GPA_RANGE, 12
	.text
	.globl _start
_start:
	mov %rdi, %rbx
	mov %rsi, %rcx
	mov $KVM_HC_MAP_GPA_RANGE, %eax
	vmcall
	mov %rax, %r12
	UCALL UCALL_DONE, %r12
	hlt
	UCALL_BLOCK
