/* ucall_demo: print, sync(1), sync(2), done. Long mode ELF. */
	.include "abi.inc"
	.text
	.globl _start
_start:
	UCALL UCALL_PRINT, $0, $0, hello, hello_len
	UCALL UCALL_SYNC, $1
	UCALL UCALL_SYNC, $2
	UCALL UCALL_DONE, $0
	hlt
	.section .rodata
hello:
	.ascii "hello from a ucall\n"
	.set hello_len, . - hello
	.text
	UCALL_BLOCK
