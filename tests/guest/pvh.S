/* A PVH-entry guest: 32-bit protected mode, paging off, %ebx = start_info.
 * Checks the start_info magic, prints on COM1, exits through debug-exit
 * (status 0 when the magic and command line pointer look right).  With a
 * command line starting "spew" it first prints 1024 lines of 65
 * characters, reading the line status before each one as Linux's serial
 * console does (bench/bench.py's serial entry, for any VMM with PVH). */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4, 4, 18			/* namesz, descsz, XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long pvh_start

	.section .text.start, "ax"
	.code32
	.globl pvh_start, _start
_start:
pvh_start:
	mov	$stack_top, %esp
	mov	$1, %edi			/* exit status if the magic is wrong */
	cmpl	$0x336ec578, (%ebx)
	jne	out
	mov	24(%ebx), %esi			/* cmdline_paddr */
	test	%esi, %esi
	jz	0f
	cmpl	$0x77657073, (%esi)		/* "spew" */
	jne	0f
	mov	$1024, %ecx
10:	mov	$line, %esi
11:	movb	(%esi), %bl
	test	%bl, %bl
	jz	13f
	mov	$0x3fd, %dx			/* line status */
12:	in	(%dx), %al
	test	$0x20, %al			/* transmitter empty */
	jz	12b
	mov	$0x3f8, %dx
	mov	%bl, %al
	out	%al, (%dx)
	inc	%esi
	jmp	11b
13:	loop	10b
	xor	%edi, %edi
	jmp	out
0:	mov	$msg, %esi
1:	movb	(%esi), %al
	test	%al, %al
	jz	2f
	mov	$0x3f8, %dx
	out	%al, (%dx)
	inc	%esi
	jmp	1b
2:	mov	24(%ebx), %esi			/* cmdline_paddr */
3:	movb	(%esi), %al
	test	%al, %al
	jz	4f
	mov	$0x3f8, %dx
	out	%al, (%dx)
	inc	%esi
	jmp	3b
4:	mov	$10, %al
	out	%al, (%dx)
	xor	%edi, %edi
out:	mov	%edi, %eax
	mov	$0x501, %dx
	out	%al, (%dx)
5:	cli
	hlt
	jmp	5b

	.section .rodata
msg:	.asciz "hello from PVH, cmdline: "
line:	.asciz "0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.\n"
	.bss
	.balign 16
	.skip 4096
stack_top:
	.section .note.GNU-stack, "", @progbits
