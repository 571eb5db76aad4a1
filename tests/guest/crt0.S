/* Tiny-guest start-up.  vireo-vmm enters an ELF64 without a PVH note in
 * 64-bit mode with identity paging of the low 4 GiB and %rsi = boot_params.
 * We switch to our own stack, call guest_main(boot_params) and report its
 * return value through the debug-exit port (0x501). */
	.section .text.start, "ax"
	.code64
	.globl _start
_start:
	lea	stack_top(%rip), %rsp
	mov	%rsi, %rdi
	call	guest_main
	mov	$0x501, %dx
	out	%al, (%dx)
1:	cli
	hlt
	jmp	1b

/* Application processors arrive here in real mode (SIPI vector 0x03). */
	.section .tramp, "ax"
	.code16
	.globl ap_tramp
ap_tramp:
	cli
	xor	%ax, %ax
	mov	%ax, %ds
	lgdtl	tramp_gdtr
	mov	%cr0, %eax
	or	$1, %eax
	mov	%eax, %cr0
	ljmpl	$0x08, $ap_prot
	.code32
ap_prot:
	mov	$0x18, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	%cr4, %eax
	or	$0x20, %eax		/* PAE */
	mov	%eax, %cr4
	mov	ap_cr3, %eax		/* the BSP's page tables */
	mov	%eax, %cr3
	mov	$0xc0000080, %ecx	/* EFER.LME */
	rdmsr
	or	$0x100, %eax
	wrmsr
	mov	%cr0, %eax
	or	$0x80000000, %eax	/* paging on: long mode */
	mov	%eax, %cr0
	ljmpl	$0x10, $ap_long
	.code64
ap_long:
	mov	ap_stack, %rsp
	call	ap_main
2:	cli
	hlt
	jmp	2b

	.balign 8
tramp_gdt:
	.quad 0
	.quad 0x00cf9b000000ffff	/* 0x08 32-bit code */
	.quad 0x00af9b000000ffff	/* 0x10 64-bit code */
	.quad 0x00cf93000000ffff	/* 0x18 data */
tramp_gdtr:
	.word tramp_gdtr - tramp_gdt - 1
	.long tramp_gdt
	.globl ap_cr3, ap_stack
ap_cr3:	.long 0
	.balign 8
ap_stack: .quad 0

	.bss
	.balign 16
	.skip 16384
stack_top:
	.section .note.GNU-stack, "", @progbits
