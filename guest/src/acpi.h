#ifndef ACPI_H
#define ACPI_H
#include "kernel.h"

#define GENID_IRQ 3                 /* the PIC line whose vector isr.S counts (VEC_PIC_BASE + 3) */

extern u64 acpi_rsdp;               /* PVH's rsdp_paddr (bootinfo.c); 0: scan the BIOS area */
extern u64 genid_events;            /* generation-ID notifications seen (isr.S) */

void acpi_init(void);
void cmd_genid(void);
#endif
