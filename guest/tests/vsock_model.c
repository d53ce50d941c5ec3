/* Host-side check of the test kernel's virtio-vsock driver (src/vio_user.c, built with
 * -DVIO_HOST_TEST) against a small model of a virtio-vsock device and a host peer: no VMM here
 * offers vsock (no vhost-vsock), so this is what exercises the driver's protocol before Engram's
 * device does. The model plays the device's side of the split virtqueues (direct and indirect
 * chains, EVENT_IDX or flags for interrupt suppression) and a host that connects to the guest's
 * echo listener (several connections at once, small credit), serves the guest's `connect`, refuses
 * an unknown port, and sends TRANSPORT_RESET. Run: sh guest/tests/vsock_model.sh */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../src/virtio.h"

volatile u64 ticks;
volatile struct vio_irq vio_irq[MAX_VDEV];

static int failed;
#define CHECK(c, ...) do { int ok_ = (c); printf(ok_ ? "ok   " : "FAIL "); printf(__VA_ARGS__); printf("\n"); if (!ok_) failed++; } while (0)

/* ---- device registers ---- */
struct mq { u32 num, ready; u64 desc, avail, used; u16 last_avail, used_idx; };
static struct mq mq[3];
static u32 status, dfsel, drfsel, qsel;
static u64 offer, drv_feat, guest_cid = 3;
static u64 irqs_raised, lost_wakeups;

u32 test_rd(struct vdev *d, u32 off)
{
    (void)d;
    switch (off) {
    case VM_MAGIC: return 0x74726976;
    case VM_VERSION: return 2;
    case VM_DEVICE_ID: return DEVID_VSOCK;
    case VM_DEV_FEAT: return dfsel ? (u32)(offer >> 32) : (u32)offer;
    case VM_QNUM_MAX: return 128;
    case VM_QREADY: return mq[qsel].ready;
    case VM_STATUS: return status;
    case VM_CFG_GEN: return 0;
    case VM_CONFIG: return (u32)guest_cid;
    case VM_CONFIG + 4: return (u32)(guest_cid >> 32);
    }
    return 0;
}

void test_wr(struct vdev *d, u32 off, u32 v)
{
    (void)d;
    struct mq *m = &mq[qsel % 3];
    switch (off) {
    case VM_DEV_FSEL: dfsel = v; break;
    case VM_DRV_FSEL: drfsel = v; break;
    case VM_DRV_FEAT:
        drv_feat = drfsel ? (drv_feat & 0xffffffffUL) | (u64)v << 32 : (drv_feat & ~0xffffffffUL) | v;
        break;
    case VM_QSEL: qsel = v; break;
    case VM_QNUM: m->num = v; break;
    case VM_QDESC: m->desc = (m->desc & ~0xffffffffUL) | v; break;
    case VM_QDESC + 4: m->desc = (m->desc & 0xffffffffUL) | (u64)v << 32; break;
    case VM_QDRIVER: m->avail = (m->avail & ~0xffffffffUL) | v; break;
    case VM_QDRIVER + 4: m->avail = (m->avail & 0xffffffffUL) | (u64)v << 32; break;
    case VM_QDEVICE: m->used = (m->used & ~0xffffffffUL) | v; break;
    case VM_QDEVICE + 4: m->used = (m->used & 0xffffffffUL) | (u64)v << 32; break;
    case VM_QREADY: m->ready = v; break;
    case VM_STATUS:
        status = v;
        if (!v)
            memset(mq, 0, sizeof mq);
        break;
    }
}

/* ---- device side of the split queues ---- */
struct dseg { u8 *p; u32 len, write; };

static int pop(int q, struct dseg *sg, int *n, u16 *head)
{
    struct mq *m = &mq[q];
    volatile u16 *avail = (volatile u16 *)m->avail;
    if (!m->ready || m->last_avail == avail[1])
        return 0;
    u16 h = avail[2 + m->last_avail % m->num];
    m->last_avail++;
    if (drv_feat & F_EVENT_IDX)
        *(volatile u16 *)(m->used + 4 + 8 * m->num) = m->last_avail;
    struct vq_desc *t = (struct vq_desc *)m->desc;
    u32 i = h, max = m->num, cnt = 0;
    if (t[h].flags & DESC_INDIRECT) {
        if (!(drv_feat & F_INDIRECT))
            CHECK(0, "indirect descriptor without the feature");
        max = t[h].len / 16;
        t = (struct vq_desc *)t[h].addr;
        i = 0;
    }
    for (;;) {
        if (i >= max || cnt >= 64) {
            CHECK(0, "bad chain");
            exit(1);
        }
        sg[cnt++] = (struct dseg){ (u8 *)t[i].addr, t[i].len, !!(t[i].flags & DESC_WRITE) };
        if (!(t[i].flags & DESC_NEXT))
            break;
        i = t[i].next;
    }
    *n = (int)cnt;
    *head = h;
    return 1;
}

static void push(int q, u16 head, u32 len)
{
    struct mq *m = &mq[q];
    volatile u8 *used = (volatile u8 *)m->used;
    *(volatile u32 *)(used + 4 + 8 * (m->used_idx % m->num)) = head;
    *(volatile u32 *)(used + 8 + 8 * (m->used_idx % m->num)) = len;
    u16 old = m->used_idx++;
    *(volatile u16 *)(used + 2) = m->used_idx;
    int irq;
    if (drv_feat & F_EVENT_IDX) {
        u16 ev = ((volatile u16 *)m->avail)[2 + m->num];
        irq = (u16)(m->used_idx - ev - 1) < (u16)(m->used_idx - old);
    } else {
        irq = !(((volatile u16 *)m->avail)[0] & 1);
    }
    if (irq) {
        vio_irq[0].count++;
        irqs_raised++;
    }
}

/* ---- packets from the host to the guest ---- */
struct pkt { struct vs_hdr h; u8 data[VS_PAY]; struct pkt *next; };
static struct pkt *rxq, **rxq_tail = &rxq;
static int rxq_len, pending_event;

static void host_send(u32 sport, u32 dport, u16 op, u32 flags, u32 buf_alloc, u32 fwd, const u8 *data, u32 len)
{
    struct pkt *p = calloc(1, sizeof *p);
    p->h = (struct vs_hdr){ .src_cid = 2, .dst_cid = guest_cid, .src_port = sport, .dst_port = dport, .len = len,
                            .type = 1, .op = op, .flags = flags, .buf_alloc = buf_alloc, .fwd_cnt = fwd };
    if (len)
        memcpy(p->data, data, len);
    *rxq_tail = p;
    rxq_tail = &p->next;
    rxq_len++;
}

/* ---- host peers ---- */
enum { P_CLIENT, P_SERVER };
struct peer {
    int mode, active, established, got_rst, got_shutdown;
    u32 hport, gport, buf_alloc;
    u32 rx_cnt, fwd_cnt, reported, tx_cnt, g_alloc, g_fwd;
    u8 *out; u32 total, nsent;          /* client: bytes to send */
    u8 *in; u32 nin;                    /* bytes received */
    u8 ring[65536]; u32 rhead, rtail;   /* server: bytes to echo */
};
static struct peer peers[8];
static int npeers;

static struct peer *peer_for(const struct vs_hdr *h)
{
    for (int i = 0; i < npeers; i++)
        if (peers[i].active && peers[i].hport == h->dst_port && peers[i].gport == h->src_port)
            return &peers[i];
    return 0;
}

static void host_recv(const struct vs_hdr *h, const u8 *data)
{
    if (h->src_cid != guest_cid || h->dst_cid != 2 || h->type != 1)
        CHECK(0, "guest packet with cids %lu->%lu type %u", h->src_cid, h->dst_cid, h->type);
    struct peer *p = peer_for(h);
    if (!p && h->op == 1) {             /* REQUEST from the guest's connect */
        for (int i = 0; i < npeers; i++)
            if (peers[i].mode == P_SERVER && !peers[i].active && peers[i].hport == h->dst_port) {
                p = &peers[i];
                p->active = p->established = 1;
                p->gport = h->src_port;
                p->g_alloc = h->buf_alloc;
                p->g_fwd = h->fwd_cnt;
                host_send(p->hport, p->gport, 2, 0, p->buf_alloc, 0, 0, 0);
                return;
            }
        host_send(h->dst_port, h->src_port, 3, 0, 0, 0, 0, 0);
        return;
    }
    if (!p) {
        if (h->op != 3)
            host_send(h->dst_port, h->src_port, 3, 0, 0, 0, 0, 0);
        return;
    }
    p->g_alloc = h->buf_alloc;
    p->g_fwd = h->fwd_cnt;
    switch (h->op) {
    case 2: p->established = 1; break;
    case 3: p->got_rst = 1; p->active = 0; break;
    case 4:
        p->got_shutdown = 1;
        host_send(p->hport, p->gport, 3, 0, 0, 0, 0, 0);
        p->active = 0;
        break;
    case 5:
        if (p->rx_cnt - p->fwd_cnt + h->len > p->buf_alloc)
            CHECK(0, "guest sent past the host's credit");
        if (p->mode == P_CLIENT) {
            memcpy(p->in + p->nin, data, h->len);
            p->nin += h->len;
            p->rx_cnt += h->len;
            p->fwd_cnt += h->len;
        } else {
            for (u32 i = 0; i < h->len; i++)
                p->ring[(p->rhead + i) % sizeof p->ring] = data[i];
            p->rhead += h->len;
            p->rx_cnt += h->len;
            p->nin += h->len;
        }
        break;
    case 6: break;
    case 7: host_send(p->hport, p->gport, 6, 0, p->buf_alloc, p->fwd_cnt, 0, 0); p->reported = p->fwd_cnt; break;
    default: CHECK(0, "unexpected op %u", h->op);
    }
}

static void peers_send(void)
{
    for (int i = 0; i < npeers; i++) {
        struct peer *p = &peers[i];
        if (!p->active || !p->established)
            continue;
        while (rxq_len < 16) {
            u32 credit = p->g_alloc - (p->tx_cnt - p->g_fwd);
            u32 n;
            const u8 *src;
            u8 tmp[VS_PAY];
            if (p->mode == P_CLIENT) {
                n = p->total - p->nsent;
                src = p->out + p->nsent;
            } else {
                n = p->rhead - p->rtail;
                for (u32 k = 0; k < n && k < VS_PAY; k++)
                    tmp[k] = p->ring[(p->rtail + k) % sizeof p->ring];
                src = tmp;
            }
            if (n > credit)
                n = credit;
            if (n > 3000)
                n = 3000;                /* packets of odd sizes */
            if (!n)
                break;
            if (p->mode == P_SERVER) {
                p->rtail += n;
                p->fwd_cnt += n;
            }
            host_send(p->hport, p->gport, 5, 0, p->buf_alloc, p->fwd_cnt, src, n);
            p->reported = p->fwd_cnt;
            p->tx_cnt += n;
            if (p->mode == P_CLIENT)
                p->nsent += n;
        }
        if (p->fwd_cnt - p->reported >= 2048 && rxq_len < 16) {
            host_send(p->hport, p->gport, 6, 0, p->buf_alloc, p->fwd_cnt, 0, 0);
            p->reported = p->fwd_cnt;
        }
    }
}

/* One round of the device: transmit queue, events, receive queue. Returns 1 if it used anything. */
static int device_step(void)
{
    struct dseg sg[64];
    int n, did = 0;
    u16 head;
    while (pop(1, sg, &n, &head)) {
        u8 buf[VS_HDR + VS_PAY];
        u32 len = 0;
        for (int i = 0; i < n; i++) {
            if (sg[i].write || len + sg[i].len > sizeof buf)
                CHECK(0, "bad tx chain");
            memcpy(buf + len, sg[i].p, sg[i].len);
            len += sg[i].len;
        }
        struct vs_hdr *h = (struct vs_hdr *)buf;
        if (len < VS_HDR || h->len != len - VS_HDR)
            CHECK(0, "tx packet length %u, header says %u", len, h->len);
        host_recv(h, buf + VS_HDR);
        push(1, head, 0);
        did = 1;
    }
    if (pending_event && pop(2, sg, &n, &head)) {
        *(u32 *)sg[0].p = 0;
        push(2, head, 4);
        pending_event = 0;
        did = 1;
    }
    peers_send();
    while (rxq && pop(0, sg, &n, &head)) {
        struct pkt *p = rxq;
        rxq = p->next;
        if (!rxq)
            rxq_tail = &rxq;
        rxq_len--;
        u8 buf[VS_HDR + VS_PAY];
        memcpy(buf, &p->h, VS_HDR);
        memcpy(buf + VS_HDR, p->data, p->h.len);
        u32 total = VS_HDR + p->h.len, off = 0;
        for (int i = 0; i < n && off < total; i++) {
            u32 k = total - off < sg[i].len ? total - off : sg[i].len;
            if (!sg[i].write)
                CHECK(0, "rx buffer not writable");
            memcpy(sg[i].p, buf + off, k);
            off += k;
        }
        if (off < total)
            CHECK(0, "rx buffer too small");
        push(0, head, total);
        free(p);
        did = 1;
    }
    return did;
}

static struct vdev dev;
static u8 *area;

/* The ring-0 loop: poll until quiet; a wait with no interrupt raised for pending work is a lost wakeup. */
static void run(int rounds)
{
    for (int r = 0; r < rounds; r++) {
        u64 res = user_vsock_poll((u64)&vsock);
        if (res == STEP_PROTO)
            CHECK(0, "protocol error");
        u64 snap = vsock.irq_snap;
        int did = device_step();
        ticks++;
        if (res == STEP_WAIT && did && vio_irq[0].count == snap) {
            /* the device used something without an interrupt: fine only if the driver had nothing to wait for */
            int pending = 0;
            for (int q = 0; q < 3; q++)
                pending |= mq[q].used_idx != dev.q[q].last_used && q != 1;
            lost_wakeups += pending;
        }
    }
}

struct vsock vsock;

static u8 ref_pattern_byte(u64 seed, u64 k)   /* independent of the driver's pattern_byte */
{
    u64 x = seed ^ (k >> 3);
    x += 0x9e3779b97f4a7c15UL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9UL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebUL;
    x ^= x >> 31;
    return (u8)(x >> (8 * (k & 7)));
}

static void reset_all(u64 features)
{
    memset(&dev, 0, sizeof dev);
    memset(&vsock, 0, sizeof vsock);
    memset(peers, 0, sizeof peers);
    npeers = 0;
    while (rxq) {
        struct pkt *p = rxq;
        rxq = p->next;
        free(p);
    }
    rxq_tail = &rxq;
    rxq_len = pending_event = 0;
    offer = features;
    dev.want_indirect = dev.want_event_idx = 1;
    dev.ctl = (u64)area;
    dev.sbuf = (u64)area + (1 << 20);
    u64 r = user_vio_init((u64)&dev);
    CHECK(r == 0 && (status & ST_DRIVER_OK), "init (features 0x%lx -> 0x%lx)", features, dev.features);
    vsock.d = &dev;
    vsock.area = (u64)area + (2 << 20);
    vsock.cid = dev.guest_cid;
    vsock.client = -1;
    vsock.listen[vsock.nlisten++] = 1234;
    CHECK(user_vsock_start((u64)&vsock) == 0, "rx and event buffers posted");
}

static void scenario(u64 features)
{
    printf("== device features 0x%lx\n", features);
    reset_all(features);
    CHECK(vsock.cid == 3, "guest cid %lu", vsock.cid);

    /* three host clients to the guest's echo listener at once, small host credit */
    u32 sizes[3] = { 100000, 1, 70001 };
    for (int i = 0; i < 3; i++) {
        struct peer *p = &peers[npeers++];
        p->mode = P_CLIENT;
        p->active = 1;
        p->hport = 5000 + i;
        p->gport = 1234;
        p->buf_alloc = 8192;
        p->total = sizes[i];
        p->out = malloc(sizes[i]);
        p->in = malloc(sizes[i] + 65536);
        for (u32 k = 0; k < sizes[i]; k++)
            p->out[k] = (u8)(k * 7 + i);
        host_send(p->hport, 1234, 1, 0, p->buf_alloc, 0, 0, 0);
    }
    run(3000);
    for (int i = 0; i < 3; i++) {
        struct peer *p = &peers[i];
        CHECK(p->established && p->nin == p->total && !memcmp(p->in, p->out, p->total),
              "echo connection %d: %u of %u bytes back, equal", i, p->nin, p->total);
    }
    /* a request to a port nobody listens on is refused */
    struct peer *x = &peers[npeers++];
    *x = (struct peer){ .mode = P_CLIENT, .active = 1, .hport = 6000, .gport = 4321, .buf_alloc = 8192 };
    host_send(6000, 4321, 1, 0, 8192, 0, 0, 0);
    run(10);
    CHECK(x->got_rst && !x->established, "request to an unlistened port gets RST");
    /* the host half-closes: the guest echoes what is left and resets */
    struct peer *p0 = &peers[0];
    host_send(p0->hport, 1234, 4, 2, p0->buf_alloc, p0->fwd_cnt, 0, 0);
    run(10);
    CHECK(p0->got_rst, "SHUTDOWN(send) from the host: the guest resets once everything is echoed");

    /* the guest connects to a host echo server */
    struct peer *s = &peers[npeers++];
    *s = (struct peer){ .mode = P_SERVER, .hport = 7000, .buf_alloc = 8192 };
    s->in = malloc(1 << 20);
    vsock.c_want = 200000;
    vsock.c_seed = 42;
    vsock.c_want_port = 7000;
    vsock.c_digest = 0xcbf29ce484222325UL;
    vsock.c_status = VS_PENDING;
    vsock.c_sent = vsock.c_got = 0;
    CHECK(user_vsock_connect((u64)&vsock) == 0, "connect sends REQUEST");
    for (int r = 0; r < 5000 && vsock.c_status == VS_PENDING; r++)
        run(1);
    run(10);
    u64 h = 0xcbf29ce484222325UL;
    for (u64 k = 0; k < 200000; k++)
        h = (h ^ ref_pattern_byte(42, k)) * 0x100000001b3UL;
    CHECK(vsock.c_status == VS_OK && vsock.c_got == 200000 && vsock.c_digest == h,
          "connect: status %u, %lu bytes echoed, digest %016lx (want %016lx)", vsock.c_status, vsock.c_got, vsock.c_digest, h);
    CHECK(s->got_shutdown && s->nin == 200000, "the guest shuts down after the echo; the host got %u bytes", s->nin);
    int open = 0;
    for (int i = 0; i < VS_CONN; i++)
        open += vsock.c[i].state != VC_FREE;
    CHECK(open == 2, "connections still open: %d (echo 1 and 2)", open);

    /* connect to a port with no host listener: refused */
    vsock.c_want_port = 7001;
    vsock.c_status = VS_PENDING;
    vsock.c_got = vsock.c_sent = 0;
    user_vsock_connect((u64)&vsock);
    run(10);
    CHECK(vsock.c_status == VS_REFUSED, "connect to a closed host port: refused (%u)", vsock.c_status);

    /* transport reset: connections dropped, listener kept, event buffer re-posted */
    pending_event = 1;
    guest_cid = 5;
    run(5);
    open = 0;
    for (int i = 0; i < VS_CONN; i++)
        open += vsock.c[i].state != VC_FREE;
    CHECK(vsock.transport_resets == 1 && open == 0 && vsock.nlisten == 1 && vsock.cid == 5,
          "TRANSPORT_RESET: %d connections left, %u listeners, cid %lu", open, vsock.nlisten, vsock.cid);
    struct peer *q = &peers[npeers++];
    *q = (struct peer){ .mode = P_CLIENT, .active = 1, .hport = 5100, .gport = 1234, .buf_alloc = 65536, .total = 5000 };
    q->out = malloc(5000);
    q->in = malloc(70000);
    for (u32 k = 0; k < 5000; k++)
        q->out[k] = (u8)k;
    host_send(5100, 1234, 1, 0, 65536, 0, 0, 0);
    run(100);
    CHECK(q->nin == 5000 && !memcmp(q->in, q->out, 5000), "after the reset the listener still echoes");
    guest_cid = 3;
    printf("     interrupts raised %lu, waits that missed one %lu\n", irqs_raised, lost_wakeups);
    CHECK(lost_wakeups == 0, "no lost wakeups");
}

int main(void)
{
    setvbuf(stdout, 0, _IOLBF, 0);
    area = aligned_alloc(1 << 21, 4 << 20);
    memset(area, 0, 4 << 20);
    scenario(F_VERSION_1 | 1);
    scenario(F_VERSION_1 | F_INDIRECT | F_EVENT_IDX);
    scenario(F_VERSION_1 | F_EVENT_IDX);
    scenario(F_VERSION_1 | F_INDIRECT);
    printf("%s: %d failed\n", failed ? "FAIL" : "PASS", failed);
    return failed ? 1 : 0;
}
