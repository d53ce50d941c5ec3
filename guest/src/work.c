/* Code that runs at CPL 3 (natively, ~2500x faster than emulated ring 0). Plain C over memory;
 * no kernel calls: each job just returns, and run_user's ud2 stub takes the result back. */
#include "work.h"
#include "mem.h"

#define FNV_BASIS 0xcbf29ce484222325UL
#define FNV_PRIME 0x100000001b3UL

/* splitmix64's output function: the value of qword i of the pattern is mix(seed ^ i). */
static inline u64 mix(u64 x)
{
    x += 0x9e3779b97f4a7c15UL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9UL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebUL;
    return x ^ (x >> 31);
}

/* Where byte `off` of the area in use is. */
static inline u64 area_addr(const struct work *w, u64 off)
{
    u64 b = off >> BLOCK_SHIFT;
    return ((u64)block_mib[w->blocks ? w->blocks[b] : b] << BLOCK_SHIFT) + (off & ((1UL << BLOCK_SHIFT) - 1));
}

u64 user_fill(u64 arg)
{
    struct work *w = (struct work *)arg;
    u64 h = FNV_BASIS, i = 0;
    for (u64 off = 0; off < w->bytes; off += 1UL << BLOCK_SHIFT) {
        u64 *p = (u64 *)area_addr(w, off);
        u64 n = w->bytes - off < (1UL << BLOCK_SHIFT) ? (w->bytes - off) / 8 : (1UL << BLOCK_SHIFT) / 8;
        for (u64 k = 0; k < n; k++, i++) {
            u64 v = mix(w->seed ^ i);
            p[k] = v;
            h = (h ^ v) * FNV_PRIME;
        }
    }
    return h;
}

u64 user_digest(u64 arg)
{
    struct work *w = (struct work *)arg;
    u64 h = FNV_BASIS;
    for (u64 off = 0; off < w->bytes; off += 1UL << BLOCK_SHIFT) {
        const u64 *p = (const u64 *)area_addr(w, off);
        u64 n = w->bytes - off < (1UL << BLOCK_SHIFT) ? (w->bytes - off) / 8 : (1UL << BLOCK_SHIFT) / 8;
        for (u64 k = 0; k < n; k++)
            h = (h ^ p[k]) * FNV_PRIME;
    }
    return h;
}

/* Stores each page's first qword back unchanged: the page is dirty for KVM, the digest unchanged. */
u64 user_dirty(u64 arg)
{
    struct work *w = (struct work *)arg;
    u64 pages = w->bytes >> 12, page = w->cursor;
    if (!pages)
        return 0;
    for (u64 j = 0; j < w->npages; j++, page++) {
        if (page >= pages)
            page = 0;
        volatile u64 *q = (volatile u64 *)area_addr(w, page << 12);
        *q = *q;
    }
    return page;
}

u64 user_cpu(u64 id)
{
    u64 x = id;
    for (u32 k = 0; k < (1u << 20); k++)
        x = mix(x);
    return x;
}
