/* The workload area's page allocator (ring 0, integer-only). Blocks are the 1 MiB-aligned MiB of
 * the workload segments, numbered in address order. */
#include "mem.h"
#include "work.h"

u16 block_mib[MAX_BLOCKS];
u8 block_state[MAX_BLOCKS];
u32 nblocks;
u16 fill_list[MAX_BLOCKS];
u32 nfill;
u32 mem_in[8];
u32 mem_clean;

void mem_init(const struct work *w)
{
    nblocks = nfill = 0;
    for (u32 k = 0; k < 8; k++)
        mem_in[k] = 0;
    for (u32 s = 0; s < w->nseg; s++) {
        u64 lo = (w->seg[s].base + (1UL << BLOCK_SHIFT) - 1) >> BLOCK_SHIFT;
        u64 hi = (w->seg[s].base + w->seg[s].len) >> BLOCK_SHIFT;
        for (u64 m = lo; m < hi && nblocks < MAX_BLOCKS; m++) {
            block_mib[nblocks] = (u16)m;
            block_state[nblocks++] = MB_FREE | MB_CLEAN;   /* never touched: the host has nothing there */
        }
    }
    mem_in[MB_FREE] = mem_clean = nblocks;
}

u32 mem_count(u32 kind, int clean_only)
{
    if (clean_only)
        return kind == MB_FREE ? mem_clean : 0;
    return mem_in[kind & 7];
}

u32 mem_count_exact(u8 state)
{
    if (state == MB_FREE)
        return mem_in[MB_FREE] - mem_clean;
    if (state == (MB_FREE | MB_CLEAN))
        return mem_clean;
    return MB_KIND(state) == MB_FREE ? 0 : mem_in[MB_KIND(state)];
}

int mem_fill(u32 n)
{
    u32 avail = mem_count(MB_FREE, 0) + nfill;
    if (n > avail)
        return -1;
    for (u32 i = 0; i < nfill; i++)
        mem_set(fill_list[i], MB_FREE);
    nfill = 0;
    for (u32 b = 0; b < nblocks && nfill < n; b++)
        if (MB_KIND(block_state[b]) == MB_FREE) {
            mem_set(b, MB_USED);
            fill_list[nfill++] = (u16)b;
        }
    return 0;
}

u32 mem_release(u32 n)
{
    if (n > nfill)
        n = nfill;
    for (u32 i = 0; i < n; i++)
        mem_set(fill_list[--nfill], MB_FREE);
    return n;
}
