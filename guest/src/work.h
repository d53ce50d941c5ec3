/* Ring-3 workload jobs and their shared argument block (in user-accessible kernel memory). */
#ifndef WORK_H
#define WORK_H
#include "kernel.h"

#define MAX_SEGS 32

/* The workload area: RAM from WORK_BASE up, as page-aligned pieces of the memmap's RAM ranges,
 * concatenated in address order (seg). A job works on `bytes` of it in 1 MiB blocks (mem.h):
 * blocks[i] is the i-th block of the area in use, or block i itself when blocks is 0. */
struct work {
    u32 nseg;
    struct { u64 base, len; } seg[MAX_SEGS];
    const u16 *blocks;
    u64 bytes;                      /* length of the area in use */
    u64 seed;                       /* fill */
    u64 cursor, npages;             /* dirty: next page index and how many pages to write */
};

u64 user_fill(u64 work);            /* writes the pattern, returns its digest */
u64 user_digest(u64 work);          /* digest of the area as it is in memory */
u64 user_dirty(u64 work);           /* rewrites npages pages in place, returns the new cursor */
u64 user_cpu(u64 id);               /* short computation for the `cpus` command */
#endif
