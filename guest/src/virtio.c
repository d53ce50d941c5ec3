/* virtio-mmio devices, ring-0 side: discovery from the command line, IOAPIC routing, running the
 * ring-3 driver steps with interrupt waits in between, and the console commands that print results. */
#include "virtio.h"
#include "balloon.h"
#include "net.h"
#include "bootinfo.h"

#define IOAPIC_BASE 0xfec00000UL
#define FNV_BASIS 0xcbf29ce484222325UL

struct vdev vdevs[MAX_VDEV];
u32 nvdev;
u64 dev_area;
volatile struct vio_irq vio_irq[MAX_VDEV];
static struct blk_run brun;
static struct evil_run erun;
static char stripped_cmds[1024];
struct vsock vsock;
static u64 vsock_tick;

/* A number with an optional 0x prefix; *end is left after it. */
static int scan_num(const char *s, const char **end, u64 *out)
{
    u64 v = 0, base = 10;
    const char *p = s;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    const char *digits = p;
    for (;; p++) {
        u64 dg;
        if (*p >= '0' && *p <= '9')
            dg = (u64)(*p - '0');
        else if (base == 16 && (*p | 0x20) >= 'a' && (*p | 0x20) <= 'f')
            dg = (u64)((*p | 0x20) - 'a' + 10);
        else
            break;
        v = v * base + dg;
    }
    if (p == digits)
        return 0;
    *end = p;
    *out = v;
    return 1;
}

static const char TOKEN[] = "virtio_mmio.device=";

static int is_token(const char *s)
{
    for (u32 i = 0; TOKEN[i]; i++)
        if (s[i] != TOKEN[i])
            return 0;
    return 1;
}

/* virtio_mmio.device=<size>[KMG]@<base>:<irq>[:<id>], Linux's syntax, anywhere on the line. */
static void parse_token(const char *s)
{
    u64 size, base, irq, id;
    const char *p = s + sizeof TOKEN - 1;
    if (!scan_num(p, &p, &size))
        return;
    if (*p == 'K' || *p == 'k')
        size <<= 10, p++;
    else if (*p == 'M' || *p == 'm')
        size <<= 20, p++;
    else if (*p == 'G' || *p == 'g')
        size <<= 30, p++;
    if (*p++ != '@' || !scan_num(p, &p, &base) || *p++ != ':' || !scan_num(p, &p, &irq))
        return;
    if (*p == ':' && !scan_num(p + 1, &p, &id))
        return;
    if (*p && *p != ' ')
        return;
    if (nvdev == MAX_VDEV || !size || base >= ((u64)MAP_GIB << 30))
        return;
    struct vdev *d = &vdevs[nvdev];
    d->index = nvdev;
    d->base = base;
    d->size = size;
    d->irq = (u32)irq;
    d->vector = VEC_VIRTIO + nvdev;
    d->want_indirect = d->want_event_idx = 1;
    nvdev++;
}

/* Reads the tokens; returns the commands with the tokens removed when the commands part held any
 * (QEMU microvm appends its tokens at the very end of the line, after the commands). */
const char *virtio_strip(const char *line, const char *cmds)
{
    int in_cmds = 0, found = 0;
    for (const char *s = line; *s; s++)
        if ((s == line || s[-1] == ' ') && is_token(s)) {
            parse_token(s);
            if (s >= cmds)
                in_cmds = 1;
        }
    if (!in_cmds)
        return cmds;
    u32 n = 0;
    const char *s = cmds;
    while (*s && n < sizeof stripped_cmds - 1) {
        if ((s == cmds || s[-1] == ' ') && is_token(s)) {
            while (*s && *s != ' ' && *s != ';')
                s++;
            found = 1;
            continue;
        }
        stripped_cmds[n++] = *s++;
    }
    stripped_cmds[n] = 0;
    return found ? stripped_cmds : cmds;
}

/* Takes DEV_AREA_BYTES, 2 MiB-aligned, from the top of a workload piece (only when devices exist);
 * shell_init offers the pieces from the last down. */
u64 virtio_reserve(u64 *seg_base, u64 *seg_len)
{
    if (!nvdev || dev_area)
        return 0;
    u64 end = *seg_base + *seg_len;
    if (end < DEV_AREA_BYTES)
        return 0;
    u64 da = (end - DEV_AREA_BYTES) & ~((2UL << 20) - 1);
    if (da < *seg_base)
        return 0;
    *seg_len = da - *seg_base;
    dev_area = da;
    return da;
}

static void ioapic_write(u32 reg, u32 v)
{
    *(volatile u32 *)IOAPIC_BASE = reg;
    *(volatile u32 *)(IOAPIC_BASE + 0x10) = v;
}

static u32 ioapic_read(u32 reg)
{
    *(volatile u32 *)IOAPIC_BASE = reg;
    return *(volatile u32 *)(IOAPIC_BASE + 0x10);
}

/* GSI n -> IOAPIC pin n, edge, active high, fixed, physical destination = the BSP. */
static void route_irq(struct vdev *d)
{
    u32 ver = ioapic_read(1);
    if (ver == 0xffffffff || d->irq > ((ver >> 16) & 0xff))
        return;
    ioapic_write(0x11 + 2 * d->irq, (lapic_read(0x20) >> 24) << 24);
    ioapic_write(0x10 + 2 * d->irq, d->vector);
}

/* (Re)initialises a device and its driver state; 1 if it is ready. */
int dev_init(struct vdev *d)
{
    struct cpu *c = this_cpu();
    vio_irq[d->index].base = 0;
    d->state = VST_FAILED;
    d->ctl = dev_area + DA_CTL + d->index * (u64)DEV_CTL_BYTES;
    d->sbuf = dev_area + DA_SBUF + d->index * 0x10000UL;
    if (!dev_area) {
        d->init_err = VERR_RESET;
        return 0;
    }
    u64 r = run_job(c, user_vio_init, (u64)d);
    d->init_err = c->job_failed ? VERR_MAGIC : (u32)r;
    if (d->init_err == VERR_NONE) {
        d->state = VST_OK;
        vio_irq[d->index].base = d->base;
    }
    if (d->devid == DEVID_NET)
        net_attach(d, d->state == VST_OK);     /* a failed one is listed too, as failed */
    if (d->state != VST_OK)
        return 0;
    if (d->devid == DEVID_BALLOON)
        balloon_attach(d);
    if (d->devid == DEVID_VSOCK && (!vsock.d || vsock.d == d)) {
        /* a (re)initialised vsock device: connections are gone, listeners stay */
        vsock.d = d;
        vsock.area = dev_area + DA_VSOCK;
        vsock.cid = d->guest_cid;
        vsock.client = -1;
        vsock.ready = run_job(c, user_vsock_start, (u64)&vsock) == 0 && !c->job_failed;
    }
    return 1;
}

void virtio_boot(void)
{
    for (u32 i = 0; i < nvdev; i++) {
        route_irq(&vdevs[i]);
        dev_init(&vdevs[i]);
    }
}

static u32 dev_status(struct vdev *d)
{
    if (!dev_area)
        return 0;
    u64 st = run_job(this_cpu(), user_vio_status, (u64)d);
    return this_cpu()->job_failed ? 0 : (u32)st;
}

const char *state_name(struct vdev *d)
{
    if (d->state == VST_OK && (dev_status(d) & ST_NEEDS_RESET))
        return "needs_reset";
    return d->state == VST_OK ? "ok" : "failed";
}

static const char *type_name(struct vdev *d)
{
    return d->devid == DEVID_BLK ? "blk" : d->devid == DEVID_RNG ? "rng" : d->devid == DEVID_VSOCK ? "vsock" :
           d->devid == DEVID_NET ? "net" : d->devid == DEVID_BALLOON ? "balloon" : "unknown";
}

/* Runs a ring-3 step until it is done, halting for the device's interrupt (or the next tick) in
 * between. Gives up after 1 s without progress. */
static u64 vio_run(struct vdev *d, u64 (*step)(u64), struct blk_run *r)
{
    struct cpu *c = this_cpu();
    u64 last = ticks, done = r->completed + r->got_bytes;
    for (;;) {
        u64 res = run_job(c, step, (u64)r);
        if (c->job_failed)
            return STEP_PROTO;
        if (res != STEP_WAIT)
            return res;
        u64 now = r->completed + r->got_bytes;
        if (now != done) {
            done = now;
            last = ticks;
        }
        if (ticks - last > HZ)
            return STEP_TIMEOUT;
        u64 t = ticks;
        while (vio_irq[d->index].count == r->irq_snap && ticks == t)
            sti_hlt();
        if (vio_irq[d->index].status & 2) {   /* a configuration change: DEVICE_NEEDS_RESET? */
            vio_irq[d->index].status &= ~2UL;
            if (dev_status(d) & ST_NEEDS_RESET)
                return STEP_TIMEOUT;   /* run_status reports needs_reset */
        }
    }
}

/* After a failed run: report needs_reset if the device says so, then reset and re-initialise. */
static const char *run_status(struct vdev *d, u64 res, u32 bad)
{
    if (res == STEP_DONE)
        return bad == 0 ? "ok" : bad == 1 ? "ioerr" : bad == 2 ? "unsupp" : "error";
    const char *s = (dev_status(d) & ST_NEEDS_RESET) ? "needs_reset" : res == STEP_TIMEOUT ? "timeout" : "error";
    dev_init(d);
    return s;
}

static struct vdev *get_dev(const char *what, const char *arg, u32 type)
{
    u64 n;
    if (!parse_u64(arg, &n) || n >= nvdev) {
        kprintf("ERROR %s: no device %s\n", what, arg);
        return 0;
    }
    struct vdev *d = &vdevs[n];
    if (type && d->devid != type) {
        kprintf("ERROR %s: device %u is not a %s device\n", what, n, what);
        return 0;
    }
    if (d->state != VST_OK) {
        kprintf("ERROR %s: device %u is not ready\n", what, n);
        return 0;
    }
    return d;
}

static void run_init(struct blk_run *r, struct vdev *d, u32 op, u32 kind)
{
    memset(r, 0, sizeof *r);
    r->d = d;
    r->op = op;
    r->kind = kind;
    r->digest = FNV_BASIS;
    r->disk_sectors = d->capacity;
    r->buf = dev_area + DA_DATA;
    r->qd = 32;
}

/* ---- blk ---- */

/* read / write / verify over a range: batches of up to 32 MiB, requests of max_req_bytes. */
static const char *blk_range(struct vdev *d, u32 op, u64 sector, u64 count, u64 seed, int verify)
{
    struct blk_run *r = &brun;
    struct cpu *c = this_cpu();
    run_init(r, d, op, RUN_RANGE);
    r->seed = seed;
    r->verify = verify;
    u64 req = d->max_req_bytes / 512;
    if (op == BLK_T_DISCARD || op == BLK_T_WZ) {
        u64 mx = op == BLK_T_DISCARD ? d->max_discard_sectors : d->max_wz_sectors;
        req = mx && mx < (1UL << 22) ? mx : (1UL << 22);
        r->wz_unmap = d->wz_may_unmap;
    }
    u64 batch_max = (op == BLK_T_IN || op == BLK_T_OUT) ? DA_DATA_BYTES / 512 : count;
    for (u64 done = 0; done < count;) {
        u64 n = count - done < batch_max ? count - done : batch_max;
        r->sector = sector + done;
        r->nsect = n;
        r->req_sect = req;
        r->nreq = (n + req - 1) / req;
        r->submitted = r->completed = r->inflight = 0;
        if (op == BLK_T_OUT)
            run_job(c, user_blk_pattern, (u64)r);
        u64 res = vio_run(d, user_blk_step, r);
        if (res != STEP_DONE || r->bad)
            return run_status(d, res, r->bad);
        if (op == BLK_T_IN)
            run_job(c, user_blk_check, (u64)r);
        done += n;
    }
    return "ok";
}

static const char *blk_one(struct vdev *d, u32 op)
{
    struct blk_run *r = &brun;
    run_init(r, d, op, RUN_ONE);
    r->nreq = 1;
    r->req_sect = 1;
    u64 res = vio_run(d, user_blk_step, r);
    return run_status(d, res, r->bad);
}

static void blk_id(struct vdev *d)
{
    const char *st = blk_one(d, BLK_T_GET_ID);
    if (!streq(st, "ok")) {
        kprintf("BLK ID dev=%u status=%s\n", (u64)d->index, st);
        return;
    }
    char id[21];
    const char *src = (const char *)(d->ctl + 24576 + 64);  /* slot 0's id buffer */
    u32 n = 0;
    while (n < 20 && src[n]) {
        id[n] = src[n] >= 0x20 && src[n] < 0x7f ? src[n] : '?';
        n++;
    }
    id[n] = 0;
    kprintf("BLK ID dev=%u id=%s\n", (u64)d->index, id);
}

static void blk_bench(struct vdev *d, char **argv, int argc)
{
    u64 bytes, qd, total, seed;
    u32 op, kind;
    if (argc != 8 || !parse_u64(argv[4], &bytes) || !parse_u64(argv[5], &qd) || !parse_u64(argv[6], &total) ||
        !parse_u64(argv[7], &seed)) {
        kprintf("ERROR usage: blk <dev> bench <randread|seqread|seqwrite> <block_bytes> <queue_depth> <total_requests> <seed>\n");
        return;
    }
    if (streq(argv[3], "randread"))
        op = BLK_T_IN, kind = RUN_RAND;
    else if (streq(argv[3], "seqread"))
        op = BLK_T_IN, kind = RUN_SEQ;
    else if (streq(argv[3], "seqwrite"))
        op = BLK_T_OUT, kind = RUN_SEQ;
    else {
        kprintf("ERROR blk bench: unknown mode %s\n", argv[3]);
        return;
    }
    if (!bytes || bytes % 512 || bytes > d->max_req_bytes || bytes / 512 > d->capacity) {
        kprintf("ERROR blk bench: block_bytes must be a multiple of 512 up to %u\n", d->max_req_bytes);
        return;
    }
    if (!qd || qd > 32 || !total) {
        kprintf("ERROR blk bench: queue_depth must be 1..32 and total_requests at least 1\n");
        return;
    }
    struct blk_run *r = &brun;
    run_init(r, d, op, kind);
    r->req_sect = bytes / 512;
    r->qd = (u32)qd;
    r->nreq = total;
    r->seed = seed;
    r->nbuf = (u32)(DA_DATA_BYTES / bytes < 64 ? DA_DATA_BYTES / bytes : 64);
    u64 t0 = ticks;
    u64 res = vio_run(d, user_blk_step, r);
    u64 dt = ticks - t0;
    const char *st = run_status(d, res, r->bad);
    kprintf("BLK BENCH dev=%u mode=%s block=%u qd=%u requests=%u bytes=%u ticks=%u status=%s\n", (u64)d->index,
            argv[3], bytes, qd, r->completed, r->completed * bytes, dt, st);
}

static void cmd_blk(char **argv, int argc)
{
    if (argc < 3) {
        kprintf("ERROR usage: blk <dev> <info|read|write|verify|flush|discard|zeroes|id|bench> ...\n");
        return;
    }
    struct vdev *d = get_dev("blk", argv[1], DEVID_BLK);
    if (!d)
        return;
    u64 n = d->index, sector = 0, count = 0, seed = 0;
    const char *sub = argv[2];
    int ranged = streq(sub, "read") || streq(sub, "discard") || streq(sub, "zeroes");
    int seeded = streq(sub, "write") || streq(sub, "verify");
    if (ranged || seeded) {
        if (argc != 5 + seeded || !parse_u64(argv[3], &sector) || !parse_u64(argv[4], &count) || !count ||
            (seeded && !parse_u64(argv[5], &seed))) {
            kprintf("ERROR usage: blk <dev> %s <sector> <count>%s\n", sub, seeded ? " <seed>" : "");
            return;
        }
    }
    if (streq(sub, "info")) {
        kprintf("BLK dev=%u sectors=%u ro=%u blk_size=%u seg_max=%u flush=%u discard=%u write_zeroes=%u indirect=%u event_idx=%u\n",
                n, d->capacity, (u64)d->ro, (u64)d->blk_size, (u64)d->seg_max, (u64)d->flush, (u64)d->discard,
                (u64)d->wz, (u64)!!(d->features & F_INDIRECT), (u64)!!(d->features & F_EVENT_IDX));
    } else if (streq(sub, "write")) {
        const char *st = blk_range(d, BLK_T_OUT, sector, count, seed, 0);
        kprintf("BLK WRITE dev=%u sector=%u count=%u digest=%X status=%s\n", n, sector, count, brun.digest, st);
    } else if (streq(sub, "read")) {
        const char *st = blk_range(d, BLK_T_IN, sector, count, 0, 0);
        kprintf("BLK READ dev=%u sector=%u count=%u digest=%X status=%s\n", n, sector, count, brun.digest, st);
    } else if (streq(sub, "verify")) {
        const char *st = blk_range(d, BLK_T_IN, sector, count, seed, 1);
        if (!streq(st, "ok"))
            kprintf("BLK VERIFY dev=%u sector=%u count=%u status=%s\n", n, sector, count, st);
        else if (brun.mismatch)
            kprintf("BLK VERIFY dev=%u sector=%u count=%u mismatch sector=%u\n", n, sector, count, brun.mismatch - 1);
        else
            kprintf("BLK VERIFY dev=%u sector=%u count=%u ok\n", n, sector, count);
    } else if (streq(sub, "discard") || streq(sub, "zeroes")) {
        int dis = streq(sub, "discard");
        const char *st = blk_range(d, dis ? BLK_T_DISCARD : BLK_T_WZ, sector, count, 0, 0);
        kprintf("BLK %s dev=%u sector=%u count=%u status=%s\n", dis ? "DISCARD" : "ZEROES", n, sector, count, st);
    } else if (streq(sub, "flush")) {
        kprintf("BLK FLUSH dev=%u status=%s\n", n, blk_one(d, BLK_T_FLUSH));
    } else if (streq(sub, "id")) {
        blk_id(d);
    } else if (streq(sub, "bench")) {
        blk_bench(d, argv, argc);
    } else {
        kprintf("ERROR blk: unknown subcommand %s\n", sub);
    }
}

/* ---- rng ---- */

static void cmd_rng(char **argv, int argc)
{
    u64 bytes;
    if (argc != 3 || !parse_u64(argv[2], &bytes) || !bytes) {
        kprintf("ERROR usage: rng <dev> <bytes>\n");
        return;
    }
    struct vdev *d = get_dev("rng", argv[1], DEVID_RNG);
    if (!d)
        return;
    struct blk_run *r = &brun;
    run_init(r, d, OP_RNG, RUN_ONE);
    r->want_bytes = bytes;
    u64 res = vio_run(d, user_rng_step, r);
    const char *st = run_status(d, res, r->bad);
    u32 distinct = 0;
    for (u32 i = 0; i < 256; i++)
        distinct += r->seen[i];
    if (!streq(st, "ok"))
        kprintf("RNG dev=%u bytes=%u status=%s\n", (u64)d->index, r->got_bytes, st);
    else
        kprintf("RNG dev=%u bytes=%u digest=%X distinct=%u\n", (u64)d->index, r->got_bytes, r->digest, (u64)distinct);
}

/* ---- virtio ---- */

static const char *const evil_kinds[] = {
    "addr-outside-ram", "chain-loop", "chain-too-long", "len-overflow", "past-end", "avail-idx-jump",
    "rewrite-in-flight", "indirect-in-indirect", "net-short-header", "net-bad-offsets", "net-oversize",
    "net-outside-ram", 0,
};

static void cmd_virtio(char **argv, int argc)
{
    if (argc == 1) {
        for (u32 i = 0; i < nvdev; i++) {
            struct vdev *d = &vdevs[i];
            kprintf("VIRTIO dev=%u type=%s base=0x%x irq=%u features=0x%X status=%s\n", (u64)i, type_name(d), d->base,
                    (u64)d->irq, d->features, state_name(d));
        }
        kprintf("VIRTIO devices=%u\n", (u64)nvdev);
        return;
    }
    u64 n;
    if (argc >= 3 && (streq(argv[1], "opt") || streq(argv[1], "reset") || streq(argv[1], "evil") ||
                      streq(argv[1], "features"))) {
        if (!parse_u64(argv[2], &n) || n >= nvdev) {
            kprintf("ERROR virtio: no device %s\n", argv[2]);
            return;
        }
        struct vdev *d = &vdevs[n];
        if (streq(argv[1], "features") && argc == 3) {
            kprintf("VIRTIO FEATURES dev=%u offered=0x%X negotiated=0x%X\n", n, d->offered, d->features);
            return;
        }
        if (streq(argv[1], "reset") && argc == 3) {
            dev_init(d);
            kprintf("VIRTIO RESET dev=%u status=%s\n", n, state_name(d));
            return;
        }
        u64 v;
        if (streq(argv[1], "opt") && argc == 5 && parse_u64(argv[4], &v) && v <= 1) {
            if (streq(argv[3], "indirect"))
                d->want_indirect = (u32)v;
            else if (streq(argv[3], "event_idx"))
                d->want_event_idx = (u32)v;
            else if (streq(argv[3], "poll"))
                d->poll = (u32)v;
            else {
                kprintf("ERROR virtio opt: unknown option %s\n", argv[3]);
                return;
            }
            if (!streq(argv[3], "poll"))
                dev_init(d);
            kprintf("VIRTIO OPT dev=%u indirect=%u event_idx=%u poll=%u status=%s\n", n, (u64)!!(d->features & F_INDIRECT),
                    (u64)!!(d->features & F_EVENT_IDX), (u64)d->poll, state_name(d));
            return;
        }
        if (streq(argv[1], "evil") && argc == 4) {
            u32 k = 0;
            while (evil_kinds[k] && !streq(evil_kinds[k], argv[3]))
                k++;
            if (!evil_kinds[k]) {
                kprintf("ERROR virtio evil: unknown kind %s\n", argv[3]);
                return;
            }
            if (k >= EVIL_NET_FIRST && d->devid != DEVID_NET) {
                kprintf("ERROR virtio evil: %s needs a net device\n", argv[3]);
                return;
            }
            if (d->state != VST_OK) {
                kprintf("ERROR virtio: device %u is not ready\n", n);
                return;
            }
            erun.d = d;
            erun.kind = k;
            erun.area = dev_area + DA_EVIL;
            erun.result = EVIL_TIMEOUT;
            run_job(this_cpu(), user_vio_evil, (u64)&erun);
            if (this_cpu()->job_failed)
                erun.result = EVIL_TIMEOUT;
            dev_init(d);
            if (erun.result == EVIL_TIMEOUT)
                kprintf("EVIL %s dev=%u result=timeout\n", argv[3], n);
            else if (erun.result == EVIL_NEEDS_RESET)
                kprintf("EVIL %s dev=%u result=needs_reset\n", argv[3], n);
            else
                kprintf("EVIL %s dev=%u result=%u\n", argv[3], n, (u64)erun.result);
            return;
        }
    }
    kprintf("ERROR usage: virtio [features <dev> | opt <dev> <indirect|event_idx|poll> <0|1> | reset <dev> | evil <dev> <kind>]\n");
}

/* ---- vsock ---- */

static int vsock_active(void)
{
    for (u32 i = 0; i < VS_CONN; i++)
        if (vsock.c[i].state != VC_FREE)
            return 1;
    return 0;
}

/* Idle loop: serve the vsock device after its interrupts, and every tick while connections are open
 * (credit waits and closing timeouts). Returns 1 if it ran. */
int virtio_poll(void)
{
    if (!vsock.ready || vsock.d->state != VST_OK)
        return 0;
    u64 now = ticks;
    if (vio_irq[vsock.d->index].count == vsock.irq_snap && (now == vsock_tick || !vsock_active()))
        return 0;
    vsock_tick = now;
    u64 r = run_job(this_cpu(), user_vsock_poll, (u64)&vsock);
    if (this_cpu()->job_failed || r == STEP_PROTO)
        dev_init(vsock.d);
    return 1;
}

static const char *const vs_status[] = { "pending", "ok", "reset", "refused", "timeout", "mismatch" };

static void vsock_connect(u64 port, u64 bytes, u64 seed)
{
    struct cpu *c = this_cpu();
    vsock.c_want = bytes;
    vsock.c_sent = vsock.c_got = 0;
    vsock.c_seed = seed;
    vsock.c_digest = FNV_BASIS;
    vsock.c_status = VS_PENDING;
    vsock.c_want_port = port;
    if (run_job(c, user_vsock_connect, (u64)&vsock) || c->job_failed) {
        kprintf("ERROR vsock: no free connection\n");
        return;
    }
    u64 last = ticks, seen = ~0UL;
    for (;;) {
        u64 r = run_job(c, user_vsock_poll, (u64)&vsock);
        if (c->job_failed || r == STEP_PROTO) {
            vsock.c_status = VS_RESET;
            for (u32 q = 0; r == STEP_PROTO && q < 3; q++)
                if (vsock.d->q[q].bad)
                    kprintf("ERROR vsock: queue %u used entry %u names no request (id %u, used index %u)\n", q,
                            vsock.d->q[q].bad_at, vsock.d->q[q].bad_id, vsock.d->q[q].bad_idx);
            dev_init(vsock.d);
            break;
        }
        if (vsock.c_status != VS_PENDING)
            break;
        int cl = vsock.client;
        u64 progress = vsock.c_sent + vsock.c_got + (cl >= 0 ? vsock.c[cl].state : 0);
        if (progress != seen) {
            seen = progress;
            last = ticks;
        }
        if (ticks - last > 2 * HZ) {
            vsock.c_status = VS_TIMEOUT;
            if (cl >= 0)
                vsock.c[cl].want_rst = 1;
            vsock.client = -1;
            run_job(c, user_vsock_poll, (u64)&vsock);
            break;
        }
        u64 t = ticks;
        while (vio_irq[vsock.d->index].count == vsock.irq_snap && ticks == t)
            sti_hlt();
    }
    kprintf("VSOCK ECHO port=%u bytes=%u digest=%X status=%s\n", port, vsock.c_got, vsock.c_digest,
            vs_status[vsock.c_status]);
}

static void cmd_vsock(char **argv, int argc)
{
    u64 port, bytes, seed;
    if (!vsock.d || !vsock.ready || vsock.d->state != VST_OK) {
        kprintf("ERROR vsock: no vsock device\n");
        return;
    }
    if (argc == 2 && streq(argv[1], "cid")) {
        kprintf("VSOCK CID cid=%u\n", vsock.cid);
    } else if (argc == 3 && streq(argv[1], "listen") && parse_u64(argv[2], &port) && port <= 0xffffffffUL) {
        u32 i = 0;
        while (i < vsock.nlisten && vsock.listen[i] != port)
            i++;
        if (i == vsock.nlisten) {
            if (vsock.nlisten == VS_LISTEN) {
                kprintf("ERROR vsock: at most %u listeners\n", (u64)VS_LISTEN);
                return;
            }
            vsock.listen[vsock.nlisten++] = (u32)port;
        }
        kprintf("VSOCK LISTEN port=%u\n", port);
    } else if (argc == 5 && streq(argv[1], "connect") && parse_u64(argv[2], &port) && port <= 0xffffffffUL &&
               parse_u64(argv[3], &bytes) && parse_u64(argv[4], &seed)) {
        vsock_connect(port, bytes, seed);
    } else if (argc == 2 && streq(argv[1], "stats")) {
        u32 n = 0;
        for (u32 i = 0; i < VS_CONN; i++)
            n += vsock.c[i].state != VC_FREE;
        kprintf("VSOCK STATS cid=%u listeners=%u connections=%u rx_pkts=%u rx_bytes=%u tx_pkts=%u tx_bytes=%u "
                "rst_sent=%u rst_rcvd=%u transport_resets=%u\n", vsock.cid, (u64)vsock.nlisten, (u64)n, vsock.rx_pkts,
                vsock.rx_bytes, vsock.tx_pkts, vsock.tx_bytes, vsock.resets_sent, vsock.resets_rcvd, vsock.transport_resets);
    } else {
        kprintf("ERROR usage: vsock <cid | listen <port> | connect <port> <bytes> <seed> | stats>\n");
    }
}

/* Returns 1 if argv[0] was one of the device commands. */
int virtio_command(char **argv, int argc)
{
    if (streq(argv[0], "virtio"))
        cmd_virtio(argv, argc);
    else if (streq(argv[0], "blk"))
        cmd_blk(argv, argc);
    else if (streq(argv[0], "rng"))
        cmd_rng(argv, argc);
    else if (streq(argv[0], "vsock"))
        cmd_vsock(argv, argc);
    else if (net_command(argv, argc))
        ;
    else if (balloon_command(argv, argc))
        ;
    else
        return 0;
    return 1;
}
