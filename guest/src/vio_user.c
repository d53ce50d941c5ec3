/* virtio drivers' ring-3 side: everything that touches device registers or rings runs here, natively
 * (ring 0 is emulated ~2500x slower). MMIO accesses from ring 3 exit to the VMM like any other.
 * No kernel calls: each job returns a code and ring 0 waits for interrupts and prints. */
#include "virtio.h"

#define FNV_BASIS 0xcbf29ce484222325UL
#define FNV_PRIME 0x100000001b3UL

static inline u64 mix(u64 x)
{
    x += 0x9e3779b97f4a7c15UL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9UL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebUL;
    return x ^ (x >> 31);
}

#ifdef VIO_HOST_TEST                /* tests/vsock_model.c: registers of a device model on the host */
u32 test_rd(struct vdev *d, u32 off);
void test_wr(struct vdev *d, u32 off, u32 v);
static inline u32 rd(struct vdev *d, u32 off) { return test_rd(d, off); }
static inline void wr(struct vdev *d, u32 off, u32 v) { test_wr(d, off, v); }
#else
static inline u32 rd(struct vdev *d, u32 off) { return *(volatile u32 *)(d->base + off); }
static inline void wr(struct vdev *d, u32 off, u32 v) { *(volatile u32 *)(d->base + off) = v; }
#endif
static inline void mb(void) { __asm__ volatile("lock; addl $0, (%%rsp)" ::: "memory"); }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }

static inline volatile u16 *used_idx_p(struct vq *q) { return (volatile u16 *)(q->used + 2); }
static inline volatile u16 *avail_event_p(struct vq *q) { return (volatile u16 *)(q->used + 4 + 8 * q->num); }
static inline volatile u16 *used_event_p(struct vq *q) { return &q->avail[2 + q->num]; }

static void zero(u64 addr, u64 n)
{
    u64 *p = (u64 *)addr;
    for (u64 i = 0; i < n / 8; i++)
        p[i] = 0;
}

u64 user_vio_status(u64 arg)
{
    struct vdev *d = (struct vdev *)arg;
    return rd(d, VM_STATUS);
}

u64 user_vio_reset(u64 arg)
{
    struct vdev *d = (struct vdev *)arg;
    wr(d, VM_STATUS, 0);
    for (u32 i = 0; i < 1000000; i++)
        if (rd(d, VM_STATUS) == 0)
            return 0;
    return 1;
}

static u32 cfg32(struct vdev *d, u32 off) { return rd(d, VM_CONFIG + off); }

/* Device configuration, re-read while ConfigGeneration changes underneath. */
void vio_read_config(struct vdev *d)
{
    u32 gen;
    do {
        gen = rd(d, VM_CFG_GEN);
        if (d->devid == DEVID_BLK) {
            d->capacity = cfg32(d, 0) | (u64)cfg32(d, 4) << 32;
            d->size_max = (d->features & (1UL << BLK_F_SIZE_MAX)) ? cfg32(d, 8) : 0;
            d->seg_max = (d->features & (1UL << BLK_F_SEG_MAX)) ? cfg32(d, 12) : 0;
            d->blk_size = (d->features & (1UL << BLK_F_BLK_SIZE)) ? cfg32(d, 20) : 512;
            d->max_discard_sectors = d->discard ? cfg32(d, 36) : 0;
            d->max_wz_sectors = d->wz ? cfg32(d, 48) : 0;
            d->wz_may_unmap = d->wz ? (cfg32(d, 56) & 0xff) : 0;
        } else if (d->devid == DEVID_VSOCK) {
            d->guest_cid = cfg32(d, 0) | (u64)cfg32(d, 4) << 32;
        } else if (d->devid == DEVID_NET) {
            u32 lo = cfg32(d, 0), hi = cfg32(d, 4);
            if (d->features & (1UL << NET_F_MAC))
                for (u32 i = 0; i < 6; i++)
                    d->mac[i] = (u8)((i < 4 ? lo >> (8 * i) : hi >> (8 * (i - 4))));
            else                    /* a locally administered address of our own */
                d->mac[0] = 2, d->mac[1] = d->mac[2] = d->mac[3] = d->mac[4] = 0, d->mac[5] = (u8)d->index;
            d->net_status = (d->features & (1UL << NET_F_STATUS)) ? (u16)(hi >> 16) : NET_S_LINK_UP;
        }
    } while (gen != rd(d, VM_CFG_GEN));
}

static void setup_blk_limits(struct vdev *d)
{
    u32 seg = 64 * 1024;
    if (d->size_max && d->size_max < seg)
        seg = d->size_max < 512 ? 512 : d->size_max & ~511u;
    u32 segs = IND_MAX - 2;
    if (!(d->features & F_INDIRECT) && segs > d->q[0].num - 2)
        segs = d->q[0].num - 2;
    if (d->seg_max && segs > d->seg_max)
        segs = d->seg_max;
    if (!segs)
        segs = 1;
    d->seg_bytes = seg;
    d->max_segs = segs;
    d->max_req_bytes = (u64)seg * segs;
    if (d->max_req_bytes > (1UL << 20))
        d->max_req_bytes = 1UL << 20;
}

static int setup_queue(struct vdev *d, u32 qi)
{
    struct vq *q = &d->q[qi];
    u64 mem = qi < 3 ? d->ctl + qi * 8192UL : dev_area + DA_BALLOON + d->index * 8192UL;  /* slots follow 3 queues */
    wr(d, VM_QSEL, qi);
    if (rd(d, VM_QREADY))
        return 0;
    u32 max = rd(d, VM_QNUM_MAX);
    if (!max)
        return 0;
    u32 num = VQ_MAX;
    while (num > max)
        num >>= 1;
    zero(mem, 8192);
    q->num = num;
    q->qidx = qi;
    q->avail_idx = q->last_used = 0;
    q->kicked = 0;
    q->desc = (volatile struct vq_desc *)mem;
    q->avail = (volatile u16 *)(mem + 4096);
    q->used = (volatile u8 *)(mem + 4096 + 1024);
    q->nfree = (u16)num;
    for (u32 i = 0; i < num; i++) {
        q->free[i] = (u16)(num - 1 - i);
        q->head_slot[i] = 0xff;
    }
    wr(d, VM_QNUM, num);
    wr(d, VM_QDESC, (u32)(u64)q->desc);
    wr(d, VM_QDESC + 4, (u32)((u64)q->desc >> 32));
    wr(d, VM_QDRIVER, (u32)(u64)q->avail);
    wr(d, VM_QDRIVER + 4, (u32)((u64)q->avail >> 32));
    wr(d, VM_QDEVICE, (u32)(u64)q->used);
    wr(d, VM_QDEVICE + 4, (u32)((u64)q->used >> 32));
    wr(d, VM_QREADY, 1);
    return 1;
}

/* The whole virtio 1.x init sequence; returns VERR_*. d->state is set by ring 0 from the result. */
u64 user_vio_init(u64 arg)
{
    struct vdev *d = (struct vdev *)arg;
    d->features = d->offered = 0;
    d->slot_busy = 0;
    if (rd(d, VM_MAGIC) != 0x74726976)
        return VERR_MAGIC;
    if (rd(d, VM_VERSION) != 2)
        return VERR_VERSION;
    d->devid = rd(d, VM_DEVICE_ID);
    if (!d->devid)
        return VERR_NODEV;
    if (user_vio_reset(arg))
        return VERR_RESET;
    wr(d, VM_STATUS, ST_ACK);
    wr(d, VM_STATUS, ST_ACK | ST_DRIVER);
    wr(d, VM_DEV_FSEL, 0);
    u64 f = rd(d, VM_DEV_FEAT);
    wr(d, VM_DEV_FSEL, 1);
    f |= (u64)rd(d, VM_DEV_FEAT) << 32;
    d->offered = f;
    u64 want = F_VERSION_1;
    if (d->want_indirect)
        want |= F_INDIRECT;
    if (d->want_event_idx)
        want |= F_EVENT_IDX;
    if (d->devid == DEVID_BLK)
        want |= 1UL << BLK_F_SIZE_MAX | 1UL << BLK_F_SEG_MAX | 1UL << BLK_F_RO | 1UL << BLK_F_BLK_SIZE |
                1UL << BLK_F_FLUSH | 1UL << BLK_F_DISCARD | 1UL << BLK_F_WZ;
    else if (d->devid == DEVID_VSOCK)
        want |= 1UL << 0;           /* VIRTIO_VSOCK_F_STREAM, where a device lists it */
    else if (d->devid == DEVID_BALLOON)
        want |= 1UL << 1 | 1UL << 2 | 1UL << 5;     /* STATS_VQ, DEFLATE_ON_OOM, PAGE_REPORTING */
    else if (d->devid == DEVID_NET)
        want |= 1UL << NET_F_CSUM | 1UL << NET_F_GUEST_CSUM | 1UL << NET_F_MAC | 1UL << NET_F_MRG_RXBUF |
                1UL << NET_F_STATUS | 1UL << NET_F_CTRL_VQ | 1UL << NET_F_GUEST_ANNOUNCE;
    f &= want & ~d->refuse;
    if (!(f & (1UL << NET_F_CTRL_VQ)))
        f &= ~(1UL << NET_F_GUEST_ANNOUNCE);    /* announcements are acknowledged on the control queue */
    d->features = f;
    if (!(f & F_VERSION_1)) {
        wr(d, VM_STATUS, ST_FAILED);
        return VERR_FEATURES;
    }
    wr(d, VM_DRV_FSEL, 0);
    wr(d, VM_DRV_FEAT, (u32)f);
    wr(d, VM_DRV_FSEL, 1);
    wr(d, VM_DRV_FEAT, (u32)(f >> 32));
    wr(d, VM_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
    if (!(rd(d, VM_STATUS) & ST_FEATURES_OK)) {
        wr(d, VM_STATUS, ST_FAILED);
        return VERR_FEATURES;
    }
    d->ro = !!(f & (1UL << BLK_F_RO));
    d->flush = !!(f & (1UL << BLK_F_FLUSH));
    d->discard = !!(f & (1UL << BLK_F_DISCARD));
    d->wz = !!(f & (1UL << BLK_F_WZ));
    d->nq = d->devid == DEVID_VSOCK ? 3 : d->devid == DEVID_NET ? 2 + !!(f & (1UL << NET_F_CTRL_VQ)) :
            d->devid == DEVID_BALLOON ? 2 + !!(f & (1UL << 1)) + !!(f & (1UL << 5)) : 1;
    for (u32 i = 0; i < d->nq; i++)
        if (!setup_queue(d, i)) {
            wr(d, VM_STATUS, ST_FAILED);
            return VERR_QUEUE;
        }
    vio_read_config(d);
    if (d->devid == DEVID_BLK)
        setup_blk_limits(d);
    wr(d, VM_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
    return VERR_NONE;
}

/* ---- split virtqueue ---- */

int slot_alloc(struct vdev *d)
{
    for (u32 i = 0; i < VQ_SLOTS; i++)
        if (!(d->slot_busy & (1UL << i))) {
            d->slot_busy |= 1UL << i;
            return (int)i;
        }
    return -1;
}

/* Adds a chain of n segments for slot s, indirect when negotiated (and n > 1); -1 if out of descriptors. */
int vq_add(struct vdev *d, struct vq *q, const struct seg *sg, u32 n, u32 s)
{
    int indirect = (d->features & F_INDIRECT) && n > 1;
    u32 need = indirect ? 1 : n;
    if (q->nfree < need)
        return -1;
    u16 *chain = d->slot_chain[s];
    for (u32 i = 0; i < need; i++)
        chain[i] = q->free[--q->nfree];
    d->slot_nchain[s] = (u8)need;
    if (indirect) {
        volatile struct vq_desc *t = (volatile struct vq_desc *)(d->ctl + 24576 + s * SLOT_BYTES + SLOT_IND_OFF);
        for (u32 i = 0; i < n; i++) {
            t[i].addr = sg[i].addr;
            t[i].len = sg[i].len;
            t[i].flags = sg[i].flags | (i + 1 < n ? DESC_NEXT : 0);
            t[i].next = (u16)(i + 1);
        }
        volatile struct vq_desc *h = &q->desc[chain[0]];
        h->addr = (u64)t;
        h->len = n * 16;
        h->flags = DESC_INDIRECT;
        h->next = 0;
    } else {
        for (u32 i = 0; i < n; i++) {
            volatile struct vq_desc *h = &q->desc[chain[i]];
            h->addr = sg[i].addr;
            h->len = sg[i].len;
            h->flags = sg[i].flags | (i + 1 < n ? DESC_NEXT : 0);
            h->next = i + 1 < n ? chain[i + 1] : 0;
        }
    }
    u16 head = chain[0];
    q->head_slot[head] = (u8)s;
    q->avail[2 + q->avail_idx % q->num] = head;
    q->avail_idx++;
    return head;
}

/* Makes added entries visible and notifies the device unless it asked not to be. */
void vq_kick(struct vdev *d, struct vq *q)
{
    u16 old = q->kicked, now = q->avail_idx;
    if (old == now)
        return;
    barrier();
    q->avail[1] = now;
    mb();
    q->kicked = now;
    int notify;
    if (d->features & F_EVENT_IDX) {
        u16 ev = *avail_event_p(q);
        notify = (u16)(now - ev - 1) < (u16)(now - old);
    } else {
        notify = !(*(volatile u16 *)q->used & 1);
    }
    if (notify)
        wr(d, VM_QNOTIFY, q->qidx);
}

/* Asks for an interrupt at the next used entry (on), or for none (off). */
void vq_irq(struct vdev *d, struct vq *q, int on)
{
    if (d->features & F_EVENT_IDX)
        *used_event_p(q) = on ? q->last_used : (u16)(q->last_used - 1);
    else
        q->avail[0] = on ? 0 : 1;
    mb();
}

/* Interrupt request for the next used entry (irq mode), or none (poll mode). */
static void vq_arm(struct vdev *d, struct vq *q)
{
    vq_irq(d, q, !d->poll);
}

/* 1 if the device has used entries the driver has not reaped. */
int vq_pending(struct vq *q)
{
    return q->last_used != *used_idx_p(q);
}

/* One used entry: 1 and its slot, 0 if none, -1 if the device returned a bad id. */
int vq_get(struct vdev *d, struct vq *q, u32 *slot)
{
    if (q->last_used == *used_idx_p(q))
        return 0;
    barrier();
    volatile u8 *e = q->used + 4 + 8 * (q->last_used % q->num);
    u32 id = *(volatile u32 *)e, len = *(volatile u32 *)(e + 4);
    q->last_used++;
    if (id >= q->num || q->head_slot[id] == 0xff) {
        q->bad_id = id;
        q->bad_at = (u16)(q->last_used - 1);
        q->bad_idx = *used_idx_p(q);
        q->bad++;
        return -1;
    }
    u32 s = q->head_slot[id];
    q->head_slot[id] = 0xff;
    for (u32 i = 0; i < d->slot_nchain[s]; i++)
        q->free[q->nfree++] = d->slot_chain[s][i];
    d->slot_len[s] = len;
    d->slot_busy &= ~(1UL << s);
    *slot = s;
    return 1;
}

/* Adds a chain in a free request slot, with a cookie for the reaper (slot_req); 0 if none is free. */
int vio_post(struct vdev *d, u32 qi, const struct seg *sg, u32 n, u64 cookie)
{
    int s = slot_alloc(d);
    if (s < 0)
        return 0;
    d->slot_req[s] = cookie;
    if (vq_add(d, &d->q[qi], sg, n, (u32)s) < 0) {
        d->slot_busy &= ~(1UL << s);
        return 0;
    }
    return 1;
}

/* After a step's requests are posted: arms and kicks the queue, then 0 if used buffers are
 * waiting (or arrive, when polling), else STEP_WAIT for the interrupt, or STEP_TIMEOUT after a
 * second of polling with no progress since `last`. */
static int await_used(struct vdev *d, struct vq *q, u64 last)
{
    vq_arm(d, q);
    vq_kick(d, q);
    if (q->last_used != *used_idx_p(q))
        return 0;
    if (!d->poll)
        return STEP_WAIT;
    while (q->last_used == *used_idx_p(q)) {
        if (ticks - last > HZ)
            return STEP_TIMEOUT;
        cpu_relax();
    }
    return 0;
}

static inline u64 slot_mem(struct vdev *d, u32 s) { return d->ctl + 24576 + s * SLOT_BYTES; }

/* ---- virtio-blk engine ---- */

/* Builds request number i of the run into slot s; returns -1 if the queue is short of descriptors. */
static int blk_submit(struct blk_run *r, u64 i, u32 s)
{
    struct vdev *d = r->d;
    struct seg sg[CHAIN_MAX];
    u32 n = 0;
    u64 sector, nsect = r->req_sect, buf;
    if (r->kind == RUN_RAND) {
        u64 blocks = r->disk_sectors / r->req_sect;
        sector = (mix(r->seed ^ i) % (blocks ? blocks : 1)) * r->req_sect;
        buf = r->buf + (s % r->nbuf) * (r->req_sect * 512);   /* slot < qd <= nbuf: its own buffer */
    } else if (r->kind == RUN_SEQ) {
        u64 blocks = r->disk_sectors / r->req_sect;
        sector = (i % (blocks ? blocks : 1)) * r->req_sect;
        buf = r->buf + (s % r->nbuf) * (r->req_sect * 512);
    } else {
        sector = r->sector + i * r->req_sect;
        if (sector + nsect > r->sector + r->nsect)
            nsect = r->sector + r->nsect - sector;
        buf = r->buf + i * r->req_sect * 512;
    }
    u64 m = slot_mem(d, s);
    volatile u32 *hdr = (volatile u32 *)m;
    hdr[0] = r->op;
    hdr[1] = 0;
    *(volatile u64 *)(m + 8) = (r->op == BLK_T_FLUSH || r->op == BLK_T_GET_ID) ? 0 : sector;
    *(volatile u8 *)(m + 16) = 0xff;
    sg[n++] = (struct seg){ m, 16, 0 };
    if (r->op == BLK_T_IN || r->op == BLK_T_OUT) {
        u64 len = nsect * 512;
        u16 fl = r->op == BLK_T_IN ? DESC_WRITE : 0;
        for (u64 off = 0; off < len; off += d->seg_bytes) {
            u64 l = len - off < d->seg_bytes ? len - off : d->seg_bytes;
            sg[n++] = (struct seg){ buf + off, (u32)l, fl };
        }
    } else if (r->op == BLK_T_DISCARD || r->op == BLK_T_WZ) {
        volatile u64 *p = (volatile u64 *)(m + 32);
        p[0] = sector;
        p[1] = nsect | (u64)(r->op == BLK_T_WZ && r->wz_unmap ? 1 : 0) << 32;
        sg[n++] = (struct seg){ m + 32, 16, 0 };
    } else if (r->op == BLK_T_GET_ID) {
        zero(m + 64, 24);
        sg[n++] = (struct seg){ m + 64, 20, DESC_WRITE };
    }
    sg[n++] = (struct seg){ m + 16, 1, DESC_WRITE };
    d->slot_req[s] = i;
    return vq_add(d, &d->q[0], sg, n, s);
}

/* Reaps, submits up to the queue depth, kicks. Irq mode returns STEP_WAIT when it must wait for an
 * interrupt (ring 0 halts); poll mode spins here until done or 1 s without progress. */
u64 user_blk_step(u64 arg)
{
    struct blk_run *r = (struct blk_run *)arg;
    struct vdev *d = r->d;
    struct vq *q = &d->q[0];
    u64 last = ticks;
    for (;;) {
        r->irq_snap = vio_irq[d->index].count;
        u32 s;
        int got;
        while ((got = vq_get(d, q, &s)) > 0) {
            u8 st = *(volatile u8 *)(slot_mem(d, s) + 16);
            if (st && !r->bad)
                r->bad = st;
            r->completed++;
            r->inflight--;
            last = ticks;
        }
        if (got < 0) {
            r->bad = 0x100;
            return STEP_PROTO;
        }
        if (r->completed == r->nreq)
            return STEP_DONE;
        while (r->submitted < r->nreq && r->inflight < r->qd) {
            int sl = slot_alloc(d);
            if (sl < 0)
                break;
            if (blk_submit(r, r->submitted, (u32)sl) < 0) {
                d->slot_busy &= ~(1UL << sl);
                if (!r->inflight)
                    return STEP_NOSPACE;
                break;
            }
            r->submitted++;
            r->inflight++;
        }
        int step = await_used(d, q, last);
        if (step)
            return step;
    }
}

/* Sector s, qword i of a seeded range: splitmix64(seed ^ (s*64 + i)). Writes the batch's data
 * buffers and folds the qwords into the digest. */
u64 user_blk_pattern(u64 arg)
{
    struct blk_run *r = (struct blk_run *)arg;
    u64 *p = (u64 *)r->buf, h = r->digest;
    for (u64 s = 0; s < r->nsect; s++) {
        u64 base = (r->sector + s) * 64;
        for (u32 i = 0; i < 64; i++) {
            u64 v = mix(r->seed ^ (base + i));
            *p++ = v;
            h = (h ^ v) * FNV_PRIME;
        }
    }
    r->digest = h;
    return 0;
}

/* Digest of the batch read, and (verify) the first sector that differs from the pattern. */
u64 user_blk_check(u64 arg)
{
    struct blk_run *r = (struct blk_run *)arg;
    const u64 *p = (const u64 *)r->buf;
    u64 h = r->digest;
    for (u64 s = 0; s < r->nsect; s++) {
        u64 base = (r->sector + s) * 64;
        for (u32 i = 0; i < 64; i++, p++) {
            h = (h ^ *p) * FNV_PRIME;
            if (r->verify && !r->mismatch && *p != mix(r->seed ^ (base + i)))
                r->mismatch = r->sector + s + 1;
        }
    }
    r->digest = h;
    return 0;
}

/* ---- virtio-rng ---- */

/* Requests of up to 4 KiB, one at a time, until want_bytes arrived; digest = FNV-1a over the bytes. */
u64 user_rng_step(u64 arg)
{
    struct blk_run *r = (struct blk_run *)arg;
    struct vdev *d = r->d;
    struct vq *q = &d->q[0];
    u64 last = ticks;
    for (;;) {
        r->irq_snap = vio_irq[d->index].count;
        u32 s;
        int got;
        while ((got = vq_get(d, q, &s)) > 0) {
            u32 len = d->slot_len[s];
            u64 left = r->want_bytes - r->got_bytes;
            if (len > 4096)
                len = 4096;
            if (len > left)
                len = (u32)left;
            const u8 *b = (const u8 *)(d->sbuf + s * 4096UL);
            u64 h = r->digest;
            for (u32 i = 0; i < len; i++) {
                h = (h ^ b[i]) * FNV_PRIME;
                r->seen[b[i]] = 1;
            }
            r->digest = h;
            r->got_bytes += len;
            r->inflight--;
            last = ticks;
        }
        if (got < 0) {
            r->bad = 0x100;
            return STEP_PROTO;
        }
        if (r->got_bytes >= r->want_bytes && !r->inflight)
            return STEP_DONE;
        if (r->got_bytes < r->want_bytes && !r->inflight) {
            int sl = slot_alloc(d);
            if (sl < 0 || sl >= 16)
                return STEP_PROTO;
            u64 left = r->want_bytes - r->got_bytes;
            struct seg sg = { d->sbuf + (u64)sl * 4096, left < 4096 ? (u32)left : 4096, DESC_WRITE };
            if (vq_add(d, q, &sg, 1, (u32)sl) < 0)
                return STEP_NOSPACE;
            r->inflight++;
        }
        int step = await_used(d, q, last);
        if (step)
            return step;
    }
}

/* ---- misbehaving driver (hostile-guest tests) ---- */

/* Waits up to 1 s for a used entry (its status byte, or for non-blk devices its length) or for
 * DEVICE_NEEDS_RESET. Polls: the device is reset afterwards anyway. */
static u32 evil_wait(struct vdev *d, struct vq *q, u64 status_addr)
{
    u64 start = ticks, seen = ticks;
    for (;;) {
        if (q->last_used != *used_idx_p(q)) {
            barrier();
            volatile u8 *e = q->used + 4 + 8 * (q->last_used % q->num);
            return d->devid == DEVID_BLK ? *(volatile u8 *)status_addr : *(volatile u32 *)(e + 4);
        }
        if (ticks != seen) {
            seen = ticks;
            if (rd(d, VM_STATUS) & ST_NEEDS_RESET)
                return EVIL_NEEDS_RESET;
            if (ticks - start > HZ)
                return EVIL_TIMEOUT;
        }
        cpu_relax();
    }
}

static void evil_put(volatile struct vq_desc *t, u32 i, u64 addr, u32 len, u16 flags, u16 next)
{
    t[i].addr = addr;
    t[i].len = len;
    t[i].flags = flags;
    t[i].next = next;
}

u64 user_vio_evil(u64 arg)
{
    struct evil_run *e = (struct evil_run *)arg;
    struct vdev *d = e->d;
    int blk = d->devid == DEVID_BLK, net = d->devid == DEVID_NET;
    /* net: the transmit queue of a freshly initialised device (nothing in flight), data device-readable */
    if (net && user_vio_init((u64)d) != VERR_NONE)
        return 0;
    struct vq *q = &d->q[net ? 1 : 0];
    u16 dw = net ? 0 : DESC_WRITE;
    u64 E = e->area, hdr = E, status = E + 16, data = E + 4096;
    volatile struct vq_desc *tab = (volatile struct vq_desc *)(E + 8192);
    volatile struct vq_desc *tab2 = (volatile struct vq_desc *)(E + 65536);
    u64 big = E + 262144;
    volatile struct vq_desc *dt = q->desc;
    const u64 outside = 0xfffffffff000UL;
    *(volatile u32 *)hdr = BLK_T_IN;
    *(volatile u32 *)(hdr + 4) = 0;
    *(volatile u64 *)(hdr + 8) = 0;
    *(volatile u8 *)status = 0xff;
    u16 jump = 1;
    /* Descriptor table entries 0.. are used directly: nothing is in flight between commands. */
    switch (e->kind) {
    case 0:                         /* addr-outside-ram */
    case 4:                         /* past-end */
    case 6:                         /* rewrite-in-flight */
        if (e->kind == 4)
            *(volatile u64 *)(hdr + 8) = d->capacity ? d->capacity - 1 : 0;
        if (blk) {
            evil_put(dt, 0, hdr, 16, DESC_NEXT, 1);
            evil_put(dt, 1, e->kind == 0 ? outside : data, 4096, DESC_WRITE | DESC_NEXT, 2);
            evil_put(dt, 2, status, 1, DESC_WRITE, 0);
        } else {
            evil_put(dt, 0, e->kind == 0 ? outside : data, 4096, dw, 0);
        }
        break;
    case 1:                         /* chain-loop */
        evil_put(dt, 0, blk ? hdr : data, blk ? 16 : 512, DESC_NEXT | (blk ? 0 : dw), 1);
        evil_put(dt, 1, data, 512, dw | DESC_NEXT, 0);
        break;
    case 2: {                       /* chain-too-long: an indirect table longer than the queue (and */
        u32 n = 1100;               /* than QEMU's 1024-entry limit) */
        if (n < q->num + 8)
            n = q->num + 8;
        for (u32 i = 0; i < n; i++)
            evil_put(tab, i, data, 512, dw | DESC_NEXT, (u16)(i + 1));
        if (blk) {
            evil_put(tab, 0, hdr, 16, DESC_NEXT, 1);
            evil_put(tab, n - 1, status, 1, DESC_WRITE, 0);
        } else {
            tab[n - 1].flags = dw;
        }
        evil_put(dt, 0, (u64)tab, n * 16, DESC_INDIRECT, 0);
        break;
    }
    case 3:                         /* len-overflow: lengths summing past 2^32 */
        if (blk) {
            evil_put(dt, 0, hdr, 16, DESC_NEXT, 1);
            evil_put(dt, 1, data, 0xfffff000u, DESC_WRITE | DESC_NEXT, 2);
            evil_put(dt, 2, data, 0x2000, DESC_WRITE | DESC_NEXT, 3);
            evil_put(dt, 3, status, 1, DESC_WRITE, 0);
        } else {
            evil_put(dt, 0, data, 0xfffff000u, dw | DESC_NEXT, 1);
            evil_put(dt, 1, data, 0x2000, dw, 0);
        }
        break;
    case 5:                         /* avail-idx-jump */
        jump = (u16)(q->num + 5);
        break;
    case 8:                         /* net-short-header: 6 bytes, half a virtio_net_hdr */
        evil_put(dt, 0, data, 6, 0, 0);
        break;
    case 9: {                       /* net-bad-offsets: NEEDS_CSUM with offsets and hdr_len past a */
        volatile u8 *f = (volatile u8 *)data;   /* 60-byte broadcast frame */
        for (u32 i = 0; i < NET_HDR + 60; i++)
            f[i] = i >= NET_HDR && i < NET_HDR + 6 ? 0xff : 0;
        f[0] = 1;
        *(volatile u16 *)(f + 2) = 4000;        /* hdr_len */
        *(volatile u16 *)(f + 6) = 3000;        /* csum_start */
        *(volatile u16 *)(f + 8) = 2000;        /* csum_offset */
        f[NET_HDR + 12] = 8;              /* IPv4 */
        evil_put(dt, 0, data, NET_HDR + 60, 0, 0);
        break;
    }
    case 10: {                      /* net-oversize: 72 KiB (over 65550 bytes) in up to 18 descriptors */
        u32 n = q->num < 18 ? q->num : 18, len = 73728 / n;
        zero(big, 73728);
        for (u32 i = 0; i < n; i++)
            evil_put(dt, i, big + (u64)i * len, len, i + 1 < n ? DESC_NEXT : 0, (u16)(i + 1));
        break;
    }
    case 11:                        /* net-outside-ram: a transmit buffer at 0xfffffffff000 */
        evil_put(dt, 0, outside, 4096, 0, 0);
        break;
    case 7: {                       /* indirect-in-indirect */
        u32 n = 0;
        if (blk)
            evil_put(tab, n++, hdr, 16, DESC_NEXT, 1);
        evil_put(tab, n, (u64)tab2, 16, DESC_INDIRECT | (blk ? DESC_NEXT : 0), (u16)(n + 1));
        n++;
        if (blk)
            evil_put(tab, n++, status, 1, DESC_WRITE, 0);
        evil_put(tab2, 0, data, 512, dw, 0);
        evil_put(dt, 0, (u64)tab, n * 16, DESC_INDIRECT, 0);
        break;
    }
    }
    for (u16 i = 0; i < jump; i++)
        q->avail[2 + (u16)(q->avail_idx + i) % q->num] = 0;
    q->avail_idx = (u16)(q->avail_idx + jump);
    barrier();
    q->avail[1] = q->avail_idx;
    mb();
    wr(d, VM_QNOTIFY, q->qidx);
    if (e->kind == 6) {             /* rewrite the chain while the device may be working on it */
        if (blk) {
            evil_put(dt, 1, outside, 0xfffff000u, DESC_WRITE | DESC_NEXT, 2);
            *(volatile u32 *)hdr = BLK_T_OUT;
        } else {
            evil_put(dt, 0, outside, 0xfffff000u, dw, 0);
        }
        mb();
        wr(d, VM_QNOTIFY, q->qidx);
    }
    e->result = evil_wait(d, q, status);
    return 0;
}

/* ---- virtio-vsock (ring 3) ----
 * Area V (1 MiB): rx headers V + 64*k, event buffers V + 4 KiB, tx headers V + 8 KiB + 64*j,
 * rx payloads V + 64 KiB + 4 KiB*k, tx payloads V + 192 KiB + 4 KiB*j, connection receive buffers
 * V + 512 KiB + 32 KiB*c. Slot cookies (slot_req): queue << 16 | buffer index. */

#define VS_OP_REQUEST 1
#define VS_OP_RESPONSE 2
#define VS_OP_RST 3
#define VS_OP_SHUTDOWN 4
#define VS_OP_RW 5
#define VS_OP_CREDIT_UPDATE 6
#define VS_OP_CREDIT_REQUEST 7
#define VS_TYPE_STREAM 1
#define VS_SHUT_RCV 1
#define VS_SHUT_SEND 2

static inline u64 vs_rx_hdr(struct vsock *v, u32 k) { return v->area + 64UL * k; }
static inline u64 vs_ev(struct vsock *v, u32 e) { return v->area + 4096 + 8UL * e; }
static inline u64 vs_tx_hdr(struct vsock *v, u32 j) { return v->area + 8192 + 64UL * j; }
static inline u64 vs_rx_pay(struct vsock *v, u32 k) { return v->area + 65536 + 4096UL * k; }
static inline u64 vs_tx_pay(struct vsock *v, u32 j) { return v->area + 196608 + 4096UL * j; }

static int vs_post_rx(struct vsock *v, u32 k)
{
    struct seg sg[2] = { { vs_rx_hdr(v, k), VS_HDR, DESC_WRITE }, { vs_rx_pay(v, k), VS_PAY, DESC_WRITE } };
    return vio_post(v->d, 0, sg, 2, k);
}

static int vs_post_ev(struct vsock *v, u32 e)
{
    struct seg sg = { vs_ev(v, e), 4, DESC_WRITE };
    return vio_post(v->d, 2, &sg, 1, 2UL << 16 | e);
}

static u32 vs_tx_free(struct vsock *v)
{
    u32 n = 0;
    for (u32 j = 0; j < VS_TX_N; j++)
        n += !(v->tx_busy & (1u << j));
    return n;
}

/* One packet; the payload is copied (two pieces, for a wrapping ring). 0 if no buffer is free. */
static int vs_send(struct vsock *v, u64 dcid, u32 sport, u32 dport, u16 op, u32 flags, struct vconn *c,
                   const u8 *p1, u32 n1, const u8 *p2, u32 n2)
{
    u32 j = 0;
    while (j < VS_TX_N && (v->tx_busy & (1u << j)))
        j++;
    if (j == VS_TX_N)
        return 0;
    struct vs_hdr *h = (struct vs_hdr *)vs_tx_hdr(v, j);
    h->src_cid = v->cid;
    h->dst_cid = dcid;
    h->src_port = sport;
    h->dst_port = dport;
    h->len = n1 + n2;
    h->type = VS_TYPE_STREAM;
    h->op = op;
    h->flags = flags;
    h->buf_alloc = VS_RING;
    h->fwd_cnt = c ? c->fwd_cnt : 0;
    u8 *dst = (u8 *)vs_tx_pay(v, j);
    for (u32 i = 0; i < n1; i++)
        dst[i] = p1[i];
    for (u32 i = 0; i < n2; i++)
        dst[n1 + i] = p2[i];
    struct seg sg[2] = { { (u64)h, VS_HDR, 0 }, { (u64)dst, n1 + n2, 0 } };
    if (!vio_post(v->d, 1, sg, n1 + n2 ? 2 : 1, 1UL << 16 | j))
        return 0;
    v->tx_busy |= 1u << j;
    v->tx_pkts++;
    v->tx_bytes += n1 + n2;
    if (c)
        c->reported_fwd = c->fwd_cnt;
    return 1;
}

static int vs_ctl(struct vsock *v, struct vconn *c, u16 op, u32 flags)
{
    return vs_send(v, c->pcid, c->lport, c->pport, op, flags, c, 0, 0, 0, 0);
}

static void vs_free(struct vsock *v, struct vconn *c)
{
    if (v->client >= 0 && c == &v->c[v->client]) {
        if (v->c_status == VS_PENDING)
            v->c_status = c->state == VC_CONNECTING ? VS_REFUSED : VS_RESET;
        v->client = -1;
    }
    c->state = VC_FREE;
}

static struct vconn *vs_find(struct vsock *v, const struct vs_hdr *h)
{
    for (u32 i = 0; i < VS_CONN; i++) {
        struct vconn *c = &v->c[i];
        if (c->state != VC_FREE && c->lport == h->dst_port && c->pport == h->src_port && c->pcid == h->src_cid)
            return c;
    }
    return 0;
}

static struct vconn *vs_alloc(struct vsock *v, u32 lport, u32 pport, u64 pcid, u32 role)
{
    for (u32 i = 0; i < VS_CONN; i++) {
        struct vconn *c = &v->c[i];
        if (c->state != VC_FREE)
            continue;
        u8 *ring = (u8 *)(v->area + 524288 + (u64)VS_RING * i);
        *c = (struct vconn){ .state = VC_ESTABLISHED, .role = role, .lport = lport, .pport = pport, .pcid = pcid,
                             .ring = ring, .since = ticks };
        return c;
    }
    return 0;
}

u8 pattern_byte(u64 seed, u64 k) { return (u8)(mix(seed ^ (k >> 3)) >> (8 * (k & 7))); }

static void vs_packet(struct vsock *v, const struct vs_hdr *h, const u8 *pay, u32 len)
{
    v->rx_pkts++;
    v->rx_bytes += len;
    if (h->dst_cid != v->cid || h->type != VS_TYPE_STREAM) {
        if (h->op != VS_OP_RST)
            vs_send(v, h->src_cid, h->dst_port, h->src_port, VS_OP_RST, 0, 0, 0, 0, 0, 0), v->resets_sent++;
        return;
    }
    struct vconn *c = vs_find(v, h);
    if (c) {
        c->peer_alloc = h->buf_alloc;
        if (c->peer_fwd != h->fwd_cnt)
            c->credit_requested = 0;
        c->peer_fwd = h->fwd_cnt;
    }
    switch (h->op) {
    case VS_OP_REQUEST: {
        int listening = 0;
        for (u32 i = 0; i < v->nlisten; i++)
            listening |= v->listen[i] == h->dst_port;
        if (!c && listening)
            c = vs_alloc(v, h->dst_port, h->src_port, h->src_cid, VR_ECHO);
        if (!c || c->role != VR_ECHO || !listening) {
            vs_send(v, h->src_cid, h->dst_port, h->src_port, VS_OP_RST, 0, 0, 0, 0, 0, 0);
            v->resets_sent++;
            return;
        }
        c->peer_alloc = h->buf_alloc;
        c->peer_fwd = h->fwd_cnt;
        c->want_response = 1;
        return;
    }
    case VS_OP_RESPONSE:
        if (c && c->state == VC_CONNECTING) {
            c->state = VC_ESTABLISHED;
            c->since = ticks;
        } else if (c) {
            c->want_rst = 1;
        }
        break;
    case VS_OP_RW:
        if (!c || c->state != VC_ESTABLISHED || c->rx_cnt - c->fwd_cnt + len > VS_RING) {
            if (c)
                c->want_rst = 1;   /* past our credit, or not connected */
            break;
        }
        if (c->role == VR_ECHO) {
            for (u32 i = 0; i < len; i++)
                c->ring[(c->rx_cnt + i) % VS_RING] = pay[i];
            c->rx_cnt += len;
        } else {
            u64 hsh = v->c_digest;
            for (u32 i = 0; i < len; i++) {
                if (v->c_status == VS_PENDING && pay[i] != pattern_byte(v->c_seed, v->c_got + i))
                    v->c_status = VS_MISMATCH;
                hsh = (hsh ^ pay[i]) * FNV_PRIME;
            }
            v->c_digest = hsh;
            v->c_got += len;
            c->rx_cnt += len;
            c->fwd_cnt += len;
            if (c->fwd_cnt - c->reported_fwd >= VS_RING / 4)
                c->want_credit = 1;
        }
        break;
    case VS_OP_CREDIT_REQUEST:
        if (c)
            c->want_credit = 1;
        break;
    case VS_OP_SHUTDOWN:
        if (c) {
            c->peer_shut |= h->flags & 3;
            if (c->role == VR_CLIENT || (h->flags & VS_SHUT_RCV))
                c->want_rst = 1;
        }
        break;
    case VS_OP_RST:
        if (c) {
            v->resets_rcvd++;
            vs_free(v, c);
        }
        return;
    case VS_OP_CREDIT_UPDATE:
        break;
    default:
        if (c)
            c->want_rst = 1;
        break;
    }
    if (!c && h->op != VS_OP_RST) {
        vs_send(v, h->src_cid, h->dst_port, h->src_port, VS_OP_RST, 0, 0, 0, 0, 0, 0);
        v->resets_sent++;
    }
}

/* Sends what each connection owes: control packets, echoed bytes, the client's pattern. */
static void vs_drive(struct vsock *v)
{
    for (u32 i = 0; i < VS_CONN; i++) {
        struct vconn *c = &v->c[i];
        if (c->state == VC_FREE)
            continue;
        if (c->want_rst) {
            if (!vs_ctl(v, c, VS_OP_RST, 0))
                continue;
            v->resets_sent++;
            vs_free(v, c);
            continue;
        }
        if (c->want_response) {
            if (!vs_ctl(v, c, VS_OP_RESPONSE, 0))
                continue;
            c->want_response = 0;
        }
        if (c->state == VC_CLOSING) {
            if (ticks - c->since > 2 * HZ)
                c->want_rst = 1;
            continue;
        }
        if (c->state != VC_ESTABLISHED)
            continue;
        u32 credit = c->peer_alloc - (c->tx_cnt - c->peer_fwd);
        if (c->peer_alloc < c->tx_cnt - c->peer_fwd)
            credit = 0;
        if (c->role == VR_ECHO) {
            u32 avail = c->rx_cnt - c->fwd_cnt;
            while (avail && credit && vs_tx_free(v) > 2) {
                u32 n = avail < credit ? avail : credit;
                if (n > VS_PAY)
                    n = VS_PAY;
                u32 off = c->fwd_cnt % VS_RING, n1 = VS_RING - off < n ? VS_RING - off : n;
                c->fwd_cnt += n;   /* the header carries the new count */
                if (!vs_send(v, c->pcid, c->lport, c->pport, VS_OP_RW, 0, c, c->ring + off, n1, c->ring, n - n1)) {
                    c->fwd_cnt -= n;
                    break;
                }
                c->tx_cnt += n;
                avail -= n;
                credit -= n;
            }
            if (avail && !credit && !c->credit_requested && vs_ctl(v, c, VS_OP_CREDIT_REQUEST, 0))
                c->credit_requested = 1;
            if (!avail && (c->peer_shut & VS_SHUT_SEND))
                c->want_rst = 1;   /* the peer sends no more and everything is echoed */
        } else if (v->client >= 0 && c == &v->c[v->client]) {
            while (v->c_sent < v->c_want && credit && vs_tx_free(v) > 2) {
                u64 n = v->c_want - v->c_sent;
                if (n > credit)
                    n = credit;
                if (n > VS_PAY)
                    n = VS_PAY;
                u8 tmp[VS_PAY];
                for (u32 k = 0; k < n; k++)
                    tmp[k] = pattern_byte(v->c_seed, v->c_sent + k);
                if (!vs_send(v, c->pcid, c->lport, c->pport, VS_OP_RW, 0, c, tmp, (u32)n, 0, 0))
                    break;
                c->tx_cnt += (u32)n;
                v->c_sent += n;
                credit -= (u32)n;
            }
            if (v->c_sent < v->c_want && !credit && !c->credit_requested && vs_ctl(v, c, VS_OP_CREDIT_REQUEST, 0))
                c->credit_requested = 1;
            if (v->c_got >= v->c_want || v->c_status != VS_PENDING) {
                if (vs_ctl(v, c, VS_OP_SHUTDOWN, VS_SHUT_RCV | VS_SHUT_SEND)) {
                    if (v->c_status == VS_PENDING)
                        v->c_status = VS_OK;
                    v->client = -1;
                    c->state = VC_CLOSING;
                    c->since = ticks;
                }
                continue;
            }
        }
        if (c->want_credit && vs_ctl(v, c, VS_OP_CREDIT_UPDATE, 0))
            c->want_credit = 0;
    }
}

u64 user_vsock_start(u64 arg)
{
    struct vsock *v = (struct vsock *)arg;
    v->tx_busy = 0;
    for (u32 i = 0; i < VS_CONN; i++)
        v->c[i].state = VC_FREE;
    for (u32 k = 0; k < VS_RX_N; k++)
        if (!vs_post_rx(v, k))
            return 1;
    for (u32 e = 0; e < VS_EV_N; e++)
        if (!vs_post_ev(v, e))
            return 1;
    for (u32 q = 0; q < 3; q++) {
        vq_arm(v->d, &v->d->q[q]);
        vq_kick(v->d, &v->d->q[q]);
    }
    return 0;
}

u64 user_vsock_poll(u64 arg)
{
    struct vsock *v = (struct vsock *)arg;
    struct vdev *d = v->d;
    for (;;) {
        v->irq_snap = vio_irq[d->index].count;
        u32 s;
        int got, any = 0;
        while ((got = vq_get(d, &d->q[2], &s)) > 0) {   /* events */
            u32 e = (u32)(d->slot_req[s] & 0xffff);
            if (*(volatile u32 *)vs_ev(v, e) == 0) {       /* VIRTIO_VSOCK_EVENT_TRANSPORT_RESET */
                v->transport_resets++;
                for (u32 i = 0; i < VS_CONN; i++)
                    if (v->c[i].state != VC_FREE)
                        vs_free(v, &v->c[i]);
                u32 gen;
                do {
                    gen = rd(d, VM_CFG_GEN);
                    v->cid = d->guest_cid = cfg32(d, 0) | (u64)cfg32(d, 4) << 32;
                } while (gen != rd(d, VM_CFG_GEN));
            }
            vs_post_ev(v, e);
            any = 1;
        }
        if (got < 0)
            return STEP_PROTO;
        while ((got = vq_get(d, &d->q[1], &s)) > 0) {   /* transmitted */
            v->tx_busy &= ~(1u << (d->slot_req[s] & 0xffff));
            any = 1;
        }
        if (got < 0)
            return STEP_PROTO;
        while ((got = vq_get(d, &d->q[0], &s)) > 0) {   /* received */
            u32 k = (u32)(d->slot_req[s] & 0xffff);
            const struct vs_hdr *h = (const struct vs_hdr *)vs_rx_hdr(v, k);
            u32 used = d->slot_len[s];
            if (used >= VS_HDR && h->len <= VS_PAY && h->len <= used - VS_HDR)
                vs_packet(v, h, (const u8 *)vs_rx_pay(v, k), h->len);
            vs_post_rx(v, k);
            any = 1;
        }
        if (got < 0)
            return STEP_PROTO;
        vs_drive(v);
        for (u32 q = 0; q < 3; q++) {
            vq_arm(d, &d->q[q]);
            vq_kick(d, &d->q[q]);
        }
        int more = 0;
        for (u32 q = 0; q < 3; q++)
            more |= d->q[q].last_used != *used_idx_p(&d->q[q]);
        if (!more)
            return any ? STEP_DONE : STEP_WAIT;
    }
}

u64 user_vsock_connect(u64 arg)
{
    struct vsock *v = (struct vsock *)arg;
    u32 port = 49152 + (v->next_port++ % 16384);
    struct vconn *c = vs_alloc(v, port, (u32)v->c_want_port, VS_HOST_CID, VR_CLIENT);
    if (!c)
        return 1;
    c->state = VC_CONNECTING;
    v->client = (int)(c - v->c);
    if (!vs_ctl(v, c, VS_OP_REQUEST, 0)) {
        c->state = VC_FREE;
        v->client = -1;
        return 1;
    }
    vq_kick(v->d, &v->d->q[1]);
    return 0;
}
