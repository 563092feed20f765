/* touch: rsi = 0 reads the byte at rdi, 1 writes dl there; ucall done(value read or written). Long mode ELF. */
	.include "abi.inc"
	.text
	.globl _start
_start:
	mov %rdi, %r8
	test %rsi, %rsi
	jnz 1f
	movzbq (%r8), %r12
	jmp 2f
1:	mov %dl, (%r8)
	movzbq %dl, %r12
2:	UCALL UCALL_DONE, %r12, %r8
	hlt
	UCALL_BLOCK
