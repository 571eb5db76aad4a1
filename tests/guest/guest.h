/* The tiny-guest library: port and MMIO access, COM1 output, LAPIC and
 * IOAPIC helpers.  Guests are freestanding C (no libc), entered in 64-bit
 * mode; guest_main()'s return value becomes vireo-vmm's exit status
 * through the debug-exit port (run vireo-vmm with --debug-exit). */
#ifndef VIREO_GUEST_H
#define VIREO_GUEST_H

#include <stdint.h>

#define COM1 0x3f8
#define LAPIC_BASE  0xfee00000UL
#define IOAPIC_BASE 0xfec00000UL

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void mmio_write32(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline uint32_t mmio_read32(uint64_t a) { return *(volatile uint32_t *)a; }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
static inline uint64_t read_cr3(void) { uint64_t v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }

void serial_putc(char c);
void serial_puts(const char *s);
void serial_put_hex(uint64_t v);
void serial_put_dec(uint64_t v);
/* Power off through the ACPI PM1a control register (S5). */
void acpi_poweroff(void);
uint32_t lapic_id(void);
void lapic_enable(void);
void lapic_eoi(void);
/* Send INIT then SIPI (vector = trampoline page) to apic id. */
void lapic_start_ap(uint32_t apic_id, uint8_t vector_page);
void ioapic_route(unsigned pin, uint8_t vector, uint32_t dest_apic);
/* Install an interrupt gate for vector (IDT is set up on first call). */
void idt_set(uint8_t vector, void (*handler)(void));
void delay(unsigned loops);

int guest_main(void *boot_params);
/* Entry of application processors started with lapic_start_ap() (weak
 * default: return, then halt). */
void ap_main(void);

#endif
