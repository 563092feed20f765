/* fill: memset(rdi, rdx, rsi) in the guest, then ucall done(bytes). Long mode ELF. */
	.include "abi.inc"
	.text
	.globl _start
_start:
	mov %rsi, %r12
	mov %rdx, %rax
	mov %rsi, %rcx
	cld
	rep stosb
	UCALL UCALL_DONE, %r12
	hlt
	UCALL_BLOCK
