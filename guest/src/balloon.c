/* virtio-balloon, ring-0 side: attaching the device, the idle-loop poll, waiting, commands. */
#include "balloon.h"
#include "mem.h"

struct balloon balloon;
static u32 poll_again;

void balloon_attach(struct vdev *d)
{
    struct balloon *b = &balloon;
    if (b->d && b->d != d)
        return;                     /* one balloon is driven */
    b->d = d;
    b->area = dev_area + DA_BALLOON;
    u32 stats = !!(d->features & (1UL << BAL_F_STATS_VQ));
    b->q_stats = stats ? 2 : 0xff;
    b->q_report = (d->features & (1UL << BAL_F_REPORTING)) ? 2 + stats : 0xff;
    b->oom_cap = ~0u;
    /* a reset device knows none of what was in flight or in the balloon: those blocks are free again */
    for (u32 blk = 0; blk < nblocks; blk++) {
        u32 k = MB_KIND(block_state[blk]);
        if (k == MB_BALLOON || k == MB_DEFLATING || k == MB_REPORTING)
            mem_set(blk, MB_FREE);
    }
    b->ready = run_job(this_cpu(), user_balloon_start, (u64)b) == 0 && !this_cpu()->job_failed;
    poll_again = 1;
}

static int usable(void)
{
    return balloon.ready && balloon.d->state == VST_OK;
}

/* One poll job; a protocol error re-initialises the device. */
static u64 poll_once(void)
{
    struct balloon *b = &balloon;
    volatile struct vio_irq *q = &vio_irq[b->d->index];
    if (q->status & 2) {            /* a configuration change: a new target */
        q->status &= ~2UL;
        b->oom_cap = ~0u;
    }
    b->irq_snap = q->count;
    u64 r = run_job(this_cpu(), user_balloon_poll, (u64)b);
    if (this_cpu()->job_failed || r == STEP_PROTO) {
        dev_init(b->d);
        return STEP_PROTO;
    }
    poll_again = r == STEP_MORE;
    return r;
}

int balloon_poll(void)
{
    if (!usable())
        return 0;
    volatile struct vio_irq *q = &vio_irq[balloon.d->index];
    if (q->count == balloon.irq_snap && !(q->status & 2) && !poll_again)
        return 0;
    poll_once();
    return 1;
}

void balloon_kick(void)
{
    poll_again = 1;
}

static u32 pending(void)
{
    return mem_count(MB_REPORTING, 0) + mem_count(MB_DEFLATING, 0);
}

/* Polls until `done` holds, halting for the device's interrupt or the next tick; 1 s without progress ends it. */
static int wait_for(int (*done)(void))
{
    u64 last = ticks, seen = ~0UL;
    while (!done()) {
        if (poll_once() == STEP_PROTO)
            return 0;
        /* progress: requests the device has used (in-flight counts stay level while it works through a batch) */
        u64 now = balloon.inflated + balloon.deflated + balloon.reported;
        if (now != seen) {
            seen = now;
            last = ticks;
        }
        if (ticks - last > HZ)
            return 0;
        u64 t = ticks;
        while (vio_irq[balloon.d->index].count == balloon.irq_snap && ticks == t && !poll_again)
            sti_hlt();
    }
    return 1;
}

static int nothing_pending(void) { return !pending(); }

void balloon_settle(void)
{
    if (usable())
        wait_for(nothing_pending);
}

static int at_cap(void) { return mem_count(MB_BALLOON, 0) <= balloon.oom_cap && !pending(); }

u32 balloon_deflate_for(u32 blocks)
{
    if (!usable() || !(balloon.d->features & (1UL << BAL_F_DEFLATE_ON_OOM)))
        return 0;
    u32 held = mem_count(MB_BALLOON, 0), k = blocks < held ? blocks : held;
    if (!k)
        return 0;
    balloon.oom_cap = held - k;
    wait_for(at_cap);
    balloon.oom_deflated += k;
    return k;
}

/* Settled: the balloon holds what it should (or all it can) and nothing is in flight. */
static int settled(void)
{
    struct balloon *b = &balloon;
    u32 held = mem_count(MB_BALLOON, 0);
    u32 want = (b->target_pages + BLOCK_PAGES - 1) / BLOCK_PAGES;
    if (want > b->oom_cap)
        want = b->oom_cap;
    int short_of_free = held < want && !mem_count(MB_FREE, 0);
    int unreported = b->q_report != 0xff && mem_count_exact(MB_FREE);
    return (held == want || short_of_free) && !pending() && !b->ops && !b->reports && !unreported;
}

static void print_state(void)
{
    struct balloon *b = &balloon;
    kprintf("BALLOON target_mib=%u actual_mib=%u inflated=%u deflated=%u reported_mib=%u stats=%u oom_deflated=%u "
            "features=0x%X\n", (u64)(b->target_pages / BLOCK_PAGES), (u64)mem_count(MB_BALLOON, 0), b->inflated,
            b->deflated, b->reported, b->stats_sent, b->oom_deflated, b->d->features);
}

int balloon_command(char **argv, int argc)
{
    if (!streq(argv[0], "balloon"))
        return 0;
    if (!usable()) {
        kprintf("ERROR balloon: no balloon device\n");
        return 1;
    }
    if (argc == 1) {
        poll_once();
        print_state();
    } else if (argc == 2 && streq(argv[1], "settle")) {
        if (!wait_for(settled))
            kprintf("ERROR balloon: not settled after 1 s without progress\n");
        print_state();
    } else {
        kprintf("ERROR usage: balloon [settle]\n");
    }
    return 1;
}
