/* hello16: real mode; "Hello, world!" on port 0xE9, "serial ok" on COM1 (waits for LSR.THRE), hlt. Flat binary for 0x1000:0000. */
	.code16
	.set CONSOLE_PORT, 0xe9
	.set COM1, 0x3f8
	.text
	.globl _start
_start:
	mov %cs, %ax
	mov %ax, %ds
	lea msg, %si
1:	lodsb
	test %al, %al
	jz 2f
	out %al, $CONSOLE_PORT
	jmp 1b
2:	lea smsg, %si
3:	mov $COM1+5, %dx
4:	in (%dx), %al
	test $0x20, %al
	jz 4b
	lodsb
	test %al, %al
	jz 5f
	mov $COM1, %dx
	out %al, (%dx)
	jmp 3b
5:	hlt
msg:	.asciz "Hello, world!\n"
smsg:	.asciz "serial ok\n"
