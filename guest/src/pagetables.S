/* Identity map of 0 .. MAP_GIB GiB in 2 MiB pages, built at link time so boot runs no table loops
 * (filling 512 entries per GiB in emulated ring 0 would cost ~1 ms per GiB).
 * Every page is user-accessible: ring 3 runs the workload and its code lives in the kernel image.
 * A is preset (no emulated A-bit update); D is left clear so KVM's shadow MMU maps pages read-only
 * until the first write, which keeps the dirty log exact for pages that are only read. */
#include "layout.h"

#define PDE_FLAGS  0xa7             /* P | RW | US | A | PS */
#define TBL_FLAGS  0x27             /* P | RW | US | A */

        .section .data.pagetables, "aw"
        .balign 4096
        .globl pml4
pml4:
        .quad pdpt + TBL_FLAGS
        .fill 511, 8, 0
pdpt:
        .set i, 0
        .rept MAP_GIB
        .quad pd + i * 4096 + TBL_FLAGS
        .set i, i + 1
        .endr
        .fill 512 - MAP_GIB, 8, 0
pd:
        .set i, 0
        .rept 512 * MAP_GIB
        .quad (i << 21) + PDE_FLAGS
        .set i, i + 1
        .endr
