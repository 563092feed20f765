/*
 * verify: every byte of [rdi, rdi+rsi) must equal dl; on the first that differs, ucall assert
 * (address, found byte). Then, when rcx < 256, write cl over the range (the guest half of
 * upstream guest_memfd_test's guest check). ucall done(bytes checked). Long mode ELF.
 */
	.include "abi.inc"
	.text
	.globl _start
_start:
	mov %rdi, %r8		/* base */
	mov %rsi, %r9		/* size */
	mov %rdx, %r10		/* expected */
	mov %rcx, %r11		/* new value or >= 256 */
	xor %rbx, %rbx
1:	cmp %r9, %rbx
	jae 2f
	movzbq (%r8,%rbx), %rax
	cmp %r10b, %al
	jne 3f
	inc %rbx
	jmp 1b
2:	cmp $256, %r11
	jae 4f
	mov %r8, %rdi
	mov %r9, %rcx
	mov %r11, %rax
	cld
	rep stosb
4:	UCALL UCALL_DONE, %r9
	hlt
3:	lea (%r8,%rbx), %r12
	mov %rax, %r13
	UCALL UCALL_ASSERT, %r12, %r13, msg_mismatch, msg_mismatch_len
	hlt
	.section .rodata
msg_mismatch:
	.ascii "byte differs from the expected value"
	.set msg_mismatch_len, . - msg_mismatch
	.text
	UCALL_BLOCK
