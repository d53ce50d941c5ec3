/* virtio-balloon, ring-3 side: page-number arrays, statistics, free page reports, queues. */
#include "balloon.h"
#include "mem.h"
#include "bootinfo.h"

static inline u32 rd(struct vdev *d, u32 off) { return *(volatile u32 *)(d->base + off); }
static inline void wr(struct vdev *d, u32 off, u32 v) { *(volatile u32 *)(d->base + off) = v; }

#define PFN_AREA   0x20000          /* + slot * 1 KiB */
#define STATS_AREA 0x40000

static u64 pfn_buf(struct balloon *b, u32 slot) { return b->area + PFN_AREA + slot * (u64)BAL_PFN_BYTES; }

static u32 blocks_in(u32 kind) { return mem_count(kind, 0); }

/* The statistics the guest can give: tags 0-7 (swap in/out, major/minor faults, free, total,
 * available, caches), sizes in bytes. */
static void post_stats(struct balloon *b)
{
    struct vdev *d = b->d;
    volatile u8 *p = (volatile u8 *)(b->area + STATS_AREA);
    u64 free = (u64)blocks_in(MB_FREE) << BLOCK_SHIFT;
    u64 v[BAL_STATS] = { 0, 0, 0, b->minor_faults, free, ram_bytes, free, 0 };
    for (u32 t = 0; t < BAL_STATS; t++) {
        p[t * 10] = (u8)t;
        p[t * 10 + 1] = 0;
        for (u32 k = 0; k < 8; k++)
            p[t * 10 + 2 + k] = (u8)(v[t] >> (8 * k));
    }
    struct seg sg = { b->area + STATS_AREA, BAL_STATS * 10, 0 };
    if (vio_post(d, b->q_stats, &sg, 1, BOP_STATS << 24)) {
        b->stats_posted = 1;
        b->stats_sent++;
    }
}

u64 user_balloon_start(u64 arg)
{
    struct balloon *b = (struct balloon *)arg;
    b->ops = b->reports = b->stats_posted = 0;
    b->actual_sent = 0;
    b->target_pages = rd(b->d, VM_CONFIG);
    if (b->q_stats != 0xff) {
        post_stats(b);
        vq_kick(b->d, &b->d->q[b->q_stats]);
    }
    for (u32 i = 0; i < b->d->nq; i++)
        vq_irq(b->d, &b->d->q[i], 1);
    return 0;
}

/* One block's page numbers into its request's buffer. */
static int post_pfns(struct balloon *b, u32 qi, u32 block, u32 op)
{
    int s = slot_alloc(b->d);
    if (s < 0)
        return 0;
    volatile u32 *pfn = (volatile u32 *)pfn_buf(b, (u32)s);
    u32 first = (u32)block_mib[block] << (BLOCK_SHIFT - 12);
    for (u32 i = 0; i < BLOCK_PAGES; i++)
        pfn[i] = first + i;
    struct seg sg = { pfn_buf(b, (u32)s), BAL_PFN_BYTES, 0 };
    b->d->slot_req[s] = (u64)op << 24 | block;
    if (vq_add(b->d, &b->d->q[qi], &sg, 1, (u32)s) < 0) {
        b->d->slot_busy &= ~(1UL << s);
        return 0;
    }
    b->ops++;
    return 1;
}

static int post_report(struct balloon *b, u32 block)
{
    struct seg sg = { (u64)block_mib[block] << BLOCK_SHIFT, 1U << BLOCK_SHIFT, DESC_WRITE };
    if (!vio_post(b->d, b->q_report, &sg, 1, (u64)BOP_REPORT << 24 | block))
        return 0;
    b->reports++;
    return 1;
}

/* Takes back what the device used; STEP_PROTO on a bad used entry. */
static int reap(struct balloon *b)
{
    struct vdev *d = b->d;
    for (u32 qi = 0; qi < d->nq; qi++) {
        u32 s;
        int got;
        while ((got = vq_get(d, &d->q[qi], &s)) > 0) {
            u32 op = (u32)(d->slot_req[s] >> 24), block = (u32)(d->slot_req[s] & 0xffffff);
            if (op == BOP_INFLATE) {
                b->ops--;
                b->inflated++;
            } else if (op == BOP_DEFLATE) {
                b->ops--;
                b->deflated++;
                mem_set(block, MB_FREE | MB_CLEAN);     /* the host gave it back as a hole */
            } else if (op == BOP_REPORT) {
                b->reports--;
                b->reported++;
                mem_set(block, MB_FREE | MB_CLEAN);
            } else if (op == BOP_STATS) {
                b->stats_posted = 0;                    /* the device wants fresh values */
            }
        }
        if (got < 0)
            return STEP_PROTO;
    }
    return 0;
}

/* Blocks the balloon should hold now. */
static u32 wanted_blocks(struct balloon *b)
{
    u32 want = (b->target_pages + BLOCK_PAGES - 1) / BLOCK_PAGES;
    return want < b->oom_cap ? want : b->oom_cap;
}

u64 user_balloon_poll(u64 arg)
{
    struct balloon *b = (struct balloon *)arg;
    struct vdev *d = b->d;
    if (reap(b))
        return STEP_PROTO;
    b->target_pages = rd(d, VM_CONFIG);
    u32 held = blocks_in(MB_BALLOON), want = wanted_blocks(b);
    /* inflate from the top of the area, deflate from the bottom: fill takes the lowest blocks */
    for (u32 blk = nblocks; held < want && b->ops < BAL_MAX_PFN_OPS && blk-- > 0;)
        if (MB_KIND(block_state[blk]) == MB_FREE) {
            if (!post_pfns(b, BQ_INFLATE, blk, BOP_INFLATE))
                break;
            mem_set(blk, MB_BALLOON);
            held++;
        }
    for (u32 blk = 0; held > want && b->ops < BAL_MAX_PFN_OPS && blk < nblocks; blk++)
        if (block_state[blk] == MB_BALLOON) {
            if (!post_pfns(b, BQ_DEFLATE, blk, BOP_DEFLATE))
                break;
            mem_set(blk, MB_DEFLATING);
            held--;
        }
    if (b->q_report != 0xff)
        for (u32 blk = 0; b->reports < BAL_MAX_REPORTS && blk < nblocks; blk++)
            if (block_state[blk] == MB_FREE) {         /* freed and not yet known to the host */
                if (!post_report(b, blk))
                    break;
                mem_set(blk, MB_REPORTING);
            }
    if (b->q_stats != 0xff && !b->stats_posted)
        post_stats(b);
    /* `actual` once the device has every inflate and deflate sent so far */
    if (!b->ops) {
        u32 actual = held * BLOCK_PAGES;
        if (actual != b->actual_sent) {
            wr(d, VM_CONFIG + 4, actual);
            b->actual_sent = actual;
        }
    }
    for (u32 qi = 0; qi < d->nq; qi++) {
        vq_irq(d, &d->q[qi], 1);
        vq_kick(d, &d->q[qi]);
    }
    if (vq_pending(&d->q[0]) || vq_pending(&d->q[1]) || (b->q_report != 0xff && vq_pending(&d->q[b->q_report])))
        return STEP_MORE;
    int more = (held < want && blocks_in(MB_FREE)) || held > want;
    return more && b->ops < BAL_MAX_PFN_OPS ? STEP_MORE : STEP_WAIT;
}
