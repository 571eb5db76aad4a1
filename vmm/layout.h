/* Guest physical address map of a Vireo x86-64 VM. */
#ifndef VIREO_VMM_LAYOUT_H
#define VIREO_VMM_LAYOUT_H

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

/* Low memory used by the loaders (all below 640 KiB). */
#define LAYOUT_GDT          0x500ULL
#define LAYOUT_PVH_INFO     0x6000ULL     /* hvm_start_info + memmap + modlist */
#define LAYOUT_BOOT_PARAMS  0x7000ULL     /* Linux zero page */
#define LAYOUT_PML4         0x9000ULL
#define LAYOUT_PDPT         0xa000ULL
#define LAYOUT_PD           0xb000ULL     /* 4 pages: identity map of 4 GiB */
#define LAYOUT_CMDLINE      0x20000ULL
#define LAYOUT_CMDLINE_MAX  0x10000ULL
#define LAYOUT_STACK_TOP    0x5ff0ULL     /* below the PVH info page */
#define LAYOUT_EBDA         0x9fc00ULL    /* reserved from here to 1 MiB */
#define LAYOUT_ACPI         0xe0000ULL    /* 64 KiB of ACPI tables */
#define LAYOUT_ACPI_LEN     0x10000ULL
#define LAYOUT_HIGH_RAM     0x100000ULL   /* 1 MiB */
#define LAYOUT_KERNEL_DEF   0x1000000ULL  /* 16 MiB */

/* The PCI hole: everything from 3 GiB to 4 GiB is not RAM. */
#define LAYOUT_PCI_HOLE     0xc0000000ULL
#define LAYOUT_MMIO32_BASE  0xc0000000ULL
#define LAYOUT_MMIO32_SIZE  0x20000000ULL /* 512 MiB for BARs */
#define LAYOUT_ECAM_BASE    0xe0000000ULL
#define LAYOUT_ECAM_SIZE    0x100000ULL   /* bus 0 only */
#define LAYOUT_BOOT_TIMER   0xfeb00000ULL /* contract: boot timer page */
#define LAYOUT_IOAPIC       0xfec00000ULL
#define LAYOUT_LAPIC        0xfee00000ULL
#define LAYOUT_IDENTITY_MAP 0xfffbc000ULL /* KVM_SET_IDENTITY_MAP_ADDR */
#define LAYOUT_TSS          0xfffbd000ULL /* KVM_SET_TSS_ADDR, 3 pages */
#define LAYOUT_4G           0x100000000ULL

/* Port I/O */
#define LAYOUT_PIO_PCI_BASE 0xc000
#define LAYOUT_PIO_PCI_SIZE 0x4000
#define LAYOUT_PM_IO_BASE   0x600
#define LAYOUT_DEBUG_EXIT   0x501
#define LAYOUT_SCI_IRQ      9

#endif
