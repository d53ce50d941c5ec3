/* The workload area's page allocator: 1 MiB blocks, handed to `fill` lowest address first, taken
 * back by `free` and by the balloon, and reported to the host when freed (free page reporting). */
#ifndef MEM_H
#define MEM_H
#include "kernel.h"

#define BLOCK_SHIFT   20
#define BLOCK_PAGES   256           /* 4 KiB pages per block */
#define MAX_BLOCKS    65536         /* 64 GiB of identity map, in MiB */

/* block_state[]: what holds a block; FREE blocks may carry MB_CLEAN */
enum { MB_FREE = 0, MB_USED = 1, MB_BALLOON = 2, MB_REPORTING = 3, MB_DEFLATING = 4 };
#define MB_CLEAN      0x80          /* free, and the host holds nothing for it (never used, reported or deflated) */
#define MB_KIND(s)    ((s) & 0x7f)

extern u16 block_mib[MAX_BLOCKS];   /* guest-physical address >> 20 */
extern u8 block_state[MAX_BLOCKS];
extern u32 nblocks;
extern u16 fill_list[MAX_BLOCKS];   /* the filled area's blocks, in pattern order */
extern u32 nfill;
extern u32 mem_in[8];               /* blocks of each kind, kept as states change (ring 0 cannot afford to count) */
extern u32 mem_clean;               /* free blocks that are clean */

/* Every state change goes through here, in ring 0 or ring 3 (both reach kernel memory). */
static inline void mem_set(u32 b, u8 s)
{
    u8 o = block_state[b];
    mem_in[MB_KIND(o)]--;
    mem_clean -= o == (MB_FREE | MB_CLEAN);
    mem_in[MB_KIND(s)]++;
    mem_clean += s == (MB_FREE | MB_CLEAN);
    block_state[b] = s;
}

struct work;
void mem_init(const struct work *w);
u32 mem_count(u32 kind, int clean_only);    /* blocks of a kind (FREE: optionally only clean ones) */
u32 mem_count_exact(u8 state);      /* blocks in exactly this state (flags included) */
int mem_fill(u32 n);                /* gives back the filled blocks, takes n free ones; -1 if too few */
u32 mem_release(u32 n);             /* gives back the last n filled blocks; returns how many */
#endif
