/* virtio-net's ring-3 side: receive buffers (merged or not), the transmit ring, the control queue's
 * ANNOUNCE_ACK, configuration changes, and the poll job that ring 0 runs after interrupts. Frames
 * themselves are net.c's business. Slot cookies (slot_req): queue << 16 | buffer index. */
#include "net.h"

static inline u64 rx_buf(struct nif *n, u32 k) { return n->area + NET_RX_OFF + (u64)NET_BUF * k; }
static inline u64 tx_buf(struct nif *n, u32 j) { return n->area + NET_TX_OFF + (u64)NET_BUF * j; }
static inline int has(struct nif *n, u32 bit) { return !!(n->d->features & (1UL << bit)); }

static int post_rx(struct nif *n, u32 k)
{
    struct seg sg = { rx_buf(n, k), n->rx_len, DESC_WRITE };
    return vio_post(n->d, 0, &sg, 1, k);
}

u64 user_net_start(u64 arg)
{
    struct nif *n = (struct nif *)arg;
    struct vdev *d = n->d;
    n->tx_busy = 0;
    n->asm_left = 0;
    n->ctl_busy = n->want_ack = 0;
    n->cfg_changed = 1;             /* the first poll looks at the status (an announcement may wait) */
    n->rx_len = has(n, NET_F_MRG_RXBUF) ? NET_MRG_BUF : NET_BUF;
    for (u32 k = 0; k < NET_RX_N; k++)
        if (!post_rx(n, k))
            return 1;
    vq_irq(d, &d->q[0], 1);
    vq_irq(d, &d->q[1], 0);         /* transmit completions are reaped on the next poll */
    vq_kick(d, &d->q[0]);
    return 0;
}

int net_tx_csum(struct nif *n) { return has(n, NET_F_CSUM); }

u32 net_tx_free(struct nif *n)
{
    u32 k = 0;
    for (u32 j = 0; j < NET_TX_N; j++)
        k += !(n->tx_busy & (1u << j));
    return k;
}

static int reap_tx(struct nif *n);

u8 *net_tx_buf(struct nif *n, u32 *j)
{
    /* Every buffer in flight (a burst of echoes within one poll): hand them to the device now
     * and wait a moment for some to come back, rather than drop the frame. */
    for (u32 spin = 0; n->tx_busy == (1u << NET_TX_N) - 1 && spin < 200000; spin++) {
        if (spin == 0)
            vq_kick(n->d, &n->d->q[1]);
        if (reap_tx(n) < 0)
            return 0;
        __asm__ volatile("pause" ::: "memory");
    }
    for (u32 i = 0; i < NET_TX_N; i++)
        if (!(n->tx_busy & (1u << i))) {
            *j = i;
            return (u8 *)tx_buf(n, i) + NET_HDR;
        }
    return 0;
}

/* Queues transmit buffer j (header and frame in one descriptor); kicked at the end of the poll. */
void net_tx_send(struct nif *n, u32 j, u32 len, u32 csum_start, u32 csum_off)
{
    struct net_hdr *h = (struct net_hdr *)tx_buf(n, j);
    *h = (struct net_hdr){ 0 };
    if (csum_start) {
        h->flags = NET_HDR_F_NEEDS_CSUM;
        h->csum_start = (u16)csum_start;
        h->csum_offset = (u16)csum_off;
    }
    struct seg sg = { (u64)h, NET_HDR + len, 0 };
    if (!vio_post(n->d, 1, &sg, 1, 1UL << 16 | j))
        return;
    n->tx_busy |= 1u << j;
    n->tx_pkts++;
    n->tx_bytes += len;
}

static int reap_tx(struct nif *n)
{
    struct vdev *d = n->d;
    u32 s;
    int got;
    while ((got = vq_get(d, &d->q[1], &s)) > 0)
        n->tx_busy &= ~(1u << (d->slot_req[s] & 0xffff));
    return got;
}

/* One used receive buffer: a whole frame, or a piece of a frame spread over num_buffers buffers. */
static void rx_used(struct nif *n, u32 k, u32 len)
{
    u8 *b = (u8 *)rx_buf(n, k), *a = (u8 *)(n->area + NET_ASM_OFF);
    const u32 max = NET_HDR + NET_FRAME;
    if (len > n->rx_len)
        len = n->rx_len;
    if (n->asm_left) {
        if (n->asm_len + len <= max)
            memcpy(a + n->asm_len, b, len);
        n->asm_len += len;
        if (--n->asm_left)
            return;
        if (n->asm_len <= max)
            net_rx_frame(n, a, n->asm_len);
        else
            n->rx_dropped++;
        return;
    }
    u32 nb = has(n, NET_F_MRG_RXBUF) && len >= NET_HDR ? ((struct net_hdr *)b)->num_buffers : 1;
    if (len < NET_HDR || !nb) {
        n->rx_dropped++;
    } else if (nb == 1) {
        net_rx_frame(n, b, len);
    } else {
        memcpy(a, b, len);
        n->asm_len = len;
        n->asm_left = nb - 1;
    }
}

static void send_ack(struct nif *n)
{
    u64 c = n->area + NET_CTL_OFF;
    *(volatile u8 *)c = 3;          /* VIRTIO_NET_CTRL_ANNOUNCE */
    *(volatile u8 *)(c + 1) = 0;    /* VIRTIO_NET_CTRL_ANNOUNCE_ACK */
    *(volatile u8 *)(c + 16) = 0xff;
    struct seg sg[2] = { { c, 2, 0 }, { c + 16, 1, DESC_WRITE } };
    if (vio_post(n->d, 2, sg, 2, 2UL << 16)) {
        n->ctl_busy = 1;
        n->want_ack = 0;
    }
}

/* A configuration change: DEVICE_NEEDS_RESET (-1), link status, an announcement request. */
static int config_changed(struct nif *n)
{
    struct vdev *d = n->d;
    if (user_vio_status((u64)d) & ST_NEEDS_RESET)
        return -1;
    vio_read_config(d);
    if ((d->net_status & NET_S_ANNOUNCE) && has(n, NET_F_GUEST_ANNOUNCE) && !n->ctl_busy) {
        n->want_announce = 1;
        n->want_ack = 1;
    }
    return 0;
}

u64 user_net_poll(u64 arg)
{
    struct nif *n = (struct nif *)arg;
    struct vdev *d = n->d;
    u32 s;
    int got;
    n->irq_snap = vio_irq[d->index].count;
    if (n->cfg_changed) {
        n->cfg_changed = 0;
        if (config_changed(n))
            return STEP_PROTO;
    }
    if (d->nq == 3) {
        while ((got = vq_get(d, &d->q[2], &s)) > 0)
            n->ctl_busy = 0;
        if (got < 0)
            return STEP_PROTO;
    }
    if (reap_tx(n) < 0)
        return STEP_PROTO;
    if (n->want_announce) {
        n->want_announce = 0;
        net_announce(n);
    }
    if (n->want_ack && !n->ctl_busy)
        send_ack(n);
    for (u32 i = 0; i < NET_BUDGET && (got = vq_get(d, &d->q[0], &s)) > 0; i++) {
        u32 k = (u32)(d->slot_req[s] & 0xffff);
        rx_used(n, k, d->slot_len[s]);
        post_rx(n, k);
    }
    if (got < 0)
        return STEP_PROTO;
    if (netop.n == n && !netop.done) {
        net_drive(n);
        /* a flood sends for the rest of this tick, reaping as the device completes */
        for (u64 t = ticks; netop.kind == OP_FLOOD && !netop.done && ticks == t;) {
            vq_kick(d, &d->q[1]);
            if (reap_tx(n) < 0)
                return STEP_PROTO;
            net_drive(n);
            if (!net_tx_free(n))
                __asm__ volatile("pause" ::: "memory");
        }
    }
    vq_irq(d, &d->q[0], 1);
    for (u32 q = 0; q < d->nq; q++)
        vq_kick(d, &d->q[q]);
    if (d->nq == 3)
        vq_irq(d, &d->q[2], 1);
    int more = vq_pending(&d->q[0]) || (d->nq == 3 && vq_pending(&d->q[2]));
    return more || (netop.n == n && netop.kind == OP_FLOOD && !netop.done) ? STEP_MORE : STEP_DONE;
}
