#ifndef BOOTINFO_H
#define BOOTINFO_H
#include "kernel.h"

struct range { u64 base, len; };
#define MAX_RANGES 32

extern struct range ram[MAX_RANGES];  /* type-1 memmap entries, sorted by base */
extern u32 nram;
extern u64 ram_bytes;               /* sum of all type-1 entries */
extern char cmdline[1024];
extern const char *boot_commands;   /* text after the " -- " token, or "" */
extern u32 cpus_hint;               /* cpus=N option before " -- ", 0 if absent */

void bootinfo_parse(u64 start_info);
int ram_contains(u64 base, u64 len);
#endif
