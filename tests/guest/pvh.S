/* A PVH-entry guest: 32-bit protected mode, paging off, %ebx = start_info.
 * Checks the start_info magic, prints on COM1, exits through debug-exit
 * (status 0 when the magic and command line pointer look right). */
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
	mov	$msg, %esi
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
	.bss
	.balign 16
	.skip 4096
stack_top:
	.section .note.GNU-stack, "", @progbits
