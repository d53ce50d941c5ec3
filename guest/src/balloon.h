/* virtio-balloon driver (the first device with DeviceID 5): inflate and deflate in 1 MiB blocks of
 * the workload area, statistics on request, free page reporting of freed blocks. */
#ifndef BALLOON_H
#define BALLOON_H
#include "virtio.h"
#include "mem.h"

#define BAL_F_STATS_VQ      1
#define BAL_F_DEFLATE_ON_OOM 2
#define BAL_F_REPORTING     5

#define BAL_PFN_BYTES       (BLOCK_PAGES * 4)   /* one block's page numbers: 1 KiB */
#define BAL_MAX_PFN_OPS     16                  /* inflate/deflate requests in flight */
#define BAL_MAX_REPORTS     8                   /* reports in flight, one block each */
#define BAL_STATS           8                   /* statistics entries sent */

enum { BQ_INFLATE, BQ_DEFLATE };
enum { BOP_INFLATE = 1, BOP_DEFLATE, BOP_REPORT, BOP_STATS };

struct balloon {
    struct vdev *d;
    u32 ready;
    u32 q_stats, q_report;          /* queue numbers, 0xff when not negotiated */
    u32 target_pages;               /* num_pages, as last read */
    u32 oom_cap;                    /* after a deflate on OOM: at most this many blocks until the target changes */
    u32 ops, reports;               /* in flight */
    u32 actual_sent;                /* the `actual` last written */
    u32 stats_posted;
    u64 area;                       /* buffers: page-number arrays, statistics */
    u64 irq_snap;
    u64 inflated, deflated, reported, stats_sent, oom_deflated;     /* blocks (stats: reports sent) */
    u64 minor_faults;               /* blocks taken by fill since boot (the statistic's stand-in) */
};
extern struct balloon balloon;

u64 user_balloon_start(u64 b);      /* after device init: posts the first statistics */
u64 user_balloon_poll(u64 b);       /* reaps, inflates or deflates toward the target, reports, kicks */

void balloon_attach(struct vdev *d);
int balloon_poll(void);             /* idle loop */
void balloon_settle(void);          /* waits (at most 1 s) until no report or deflate holds blocks */
u32 balloon_deflate_for(u32 blocks);/* deflate on OOM: frees up to `blocks` balloon blocks; returns how many */
void balloon_kick(void);            /* blocks were freed: report them soon */
int balloon_command(char **argv, int argc);
#endif
