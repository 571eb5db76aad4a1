/* The guest's own virtual-to-physical translation, done by reading its page
 * tables from guest RAM: for register dumps, so that a crash or a hang
 * report says where RIP and RSP really lead (and which table entry is
 * missing or points outside RAM). Everything it reads is guest-controlled:
 * tables are reached only through gmem_ptr, never followed outside RAM. */
#ifndef VIREO_VMM_X86_PAGEWALK_H
#define VIREO_VMM_X86_PAGEWALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../gmem.h"

enum pagewalk_result {
	PAGEWALK_OK,            /* *gpa is the translation */
	PAGEWALK_NOT_PRESENT,   /* an entry without its present bit */
	PAGEWALK_OUTSIDE_RAM,   /* a table (or the final page) lies outside guest RAM */
	PAGEWALK_NONCANONICAL,  /* va is not canonical for the paging depth */
};

/* Walk va through 4-level (or, with la57, 5-level) tables rooted at cr3.
 * Writes what it read ("pml4e 0x... pdpte 0x... -> gpa 0x...", or where
 * and why it stopped) into text (always NUL-terminated when len > 0) and
 * the physical address into *gpa when it gets that far (also for a final
 * page outside RAM). */
enum pagewalk_result pagewalk(const struct gmem *m, uint64_t cr3, bool la57, uint64_t va,
			      uint64_t *gpa, char *text, size_t len);

#endif
