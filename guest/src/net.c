/* The ring-3 network stack over vio_net.c: Ethernet II, ARP (answers, a small cache, gratuitous
 * announcements), IPv4 without options or fragments, ICMP echo, the UDP echo service, and the steps
 * of `net ping|udp|flood`. Checksums are completed (VIRTIO_NET_HDR_F_NEEDS_CSUM) and verified here;
 * outgoing ones are left to the device when VIRTIO_NET_F_CSUM was negotiated. */
#include "net.h"

#define ETH_ARP  0x0806
#define ETH_IPV4 0x0800
#define IP_ICMP  1
#define IP_UDP   17
#define L4       34                 /* Ethernet + IPv4 header without options */

static const u8 bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const u8 nomac[6];

static inline u32 get16(const u8 *p) { return (u32)p[0] << 8 | p[1]; }
static inline u32 get32(const u8 *p) { return get16(p) << 16 | get16(p + 2); }
static inline void put16(u8 *p, u32 v) { p[0] = (u8)(v >> 8), p[1] = (u8)v; }
static inline void put32(u8 *p, u32 v) { put16(p, v >> 16), put16(p + 2, v); }
static inline int mac_eq(const u8 *a, const u8 *b)
{
    for (u32 i = 0; i < 6; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

/* Internet checksum pieces: a sum of big-endian 16-bit words, folded. */
static u64 sum16(const u8 *p, u32 len, u64 acc)
{
    for (u32 i = 0; i + 1 < len; i += 2)
        acc += get16(p + i);
    if (len & 1)
        acc += (u32)p[len - 1] << 8;
    return acc;
}

static u32 fold(u64 s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (u32)s;
}

static u64 pseudo(u32 src, u32 dst, u32 proto, u32 len)
{
    return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + len;
}

/* A transmit buffer with the Ethernet header filled in; 0 if none is free. */
static u8 *eth_start(struct nif *n, u32 *j, const u8 *dst, u32 type)
{
    u8 *f = net_tx_buf(n, j);
    if (!f)
        return 0;
    memcpy(f, dst, 6);
    memcpy(f + 6, n->d->mac, 6);
    put16(f + 12, type);
    return f;
}

static void ip_hdr(struct nif *n, u8 *ip, u32 dst, u32 proto, u32 l4len)
{
    ip[0] = 0x45;
    ip[1] = 0;
    put16(ip + 2, 20 + l4len);
    put16(ip + 4, n->ip_id++);
    put16(ip + 6, 0);
    ip[8] = 64;
    ip[9] = (u8)proto;
    put16(ip + 10, 0);
    put32(ip + 12, n->ip);
    put32(ip + 16, dst);
    put16(ip + 10, ~fold(sum16(ip, 20, 0)));
}

/* Sends an IPv4 frame whose ICMP or UDP message (checksum field at csum_off) starts at L4. A UDP
 * checksum is left to the device (from the pseudo-header sum) when it can; ICMP's is always computed
 * here, as Linux does: a receiver's raw socket would otherwise see the unfilled field. */
static void l4_send(struct nif *n, u32 j, u8 *f, u32 l4len, u32 csum_off, u64 ph)
{
    u8 *l4 = f + L4;
    if (net_tx_csum(n) && csum_off == 6) {
        put16(l4 + csum_off, fold(ph));
        net_tx_send(n, j, L4 + l4len, L4, csum_off);
        return;
    }
    put16(l4 + csum_off, 0);
    u32 c = ~fold(sum16(l4, l4len, ph)) & 0xffff;
    put16(l4 + csum_off, c || csum_off != 6 ? c : 0xffff);
    net_tx_send(n, j, L4 + l4len, 0, 0);
}

/* ---- ARP ---- */

static void arp_send(struct nif *n, u32 op, const u8 *dst, const u8 *tha, u32 tip)
{
    u32 j;
    u8 *f = eth_start(n, &j, dst, ETH_ARP);
    if (!f)
        return;
    u8 *a = f + 14;
    put16(a, 1);
    put16(a + 2, ETH_IPV4);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, op);
    memcpy(a + 8, n->d->mac, 6);
    put32(a + 14, n->ip);
    memcpy(a + 18, tha, 6);
    put32(a + 24, tip);
    memset(a + 28, 0, 18);          /* padded to the 60-byte minimum */
    net_tx_send(n, j, 60, 0, 0);
    n->arp_tx++;
}

static const u8 *arp_lookup(struct nif *n, u32 ip)
{
    for (u32 i = 0; i < NET_ARP_N; i++)
        if (n->arp[i].ip == ip && ip)
            return n->arp[i].mac;
    return 0;
}

/* Updates a known sender; adds it (over the oldest entry) when the packet was meant for us. */
static void arp_learn(struct nif *n, u32 ip, const u8 *mac, int add)
{
    struct arp_ent *e = 0;
    for (u32 i = 0; i < NET_ARP_N && !e; i++)
        if (n->arp[i].ip == ip)
            e = &n->arp[i];
    if (!e && !add)
        return;
    if (!e) {
        e = &n->arp[0];
        for (u32 i = 1; i < NET_ARP_N; i++)
            if (n->arp[i].tick < e->tick)
                e = &n->arp[i];
    }
    e->ip = ip;
    memcpy(e->mac, mac, 6);
    e->tick = ticks;
}

void net_announce(struct nif *n)
{
    if (!n->ip)
        return;
    arp_send(n, 1, bcast, nomac, n->ip);
    n->announces++;
}

static void rx_arp(struct nif *n, const u8 *f, u32 len)
{
    const u8 *a = f + 14;
    if (len < 42 || get16(a) != 1 || get16(a + 2) != ETH_IPV4 || a[4] != 6 || a[5] != 4) {
        n->rx_dropped++;
        return;
    }
    n->arp_rx++;
    u32 sip = get32(a + 14), tip = get32(a + 24);
    int for_us = n->ip && tip == n->ip;
    if (sip && sip != n->ip)
        arp_learn(n, sip, a + 8, for_us);
    if (get16(a + 6) == 1 && for_us && sip != n->ip)
        arp_send(n, 2, a + 8, a + 8, sip);
}

/* ---- ICMP and UDP ---- */

static void rx_icmp(struct nif *n, const u8 *f, u32 src, const u8 *m, u32 len)
{
    struct net_op *o = &netop;
    if (len < 8 || fold(sum16(m, len, 0)) != 0xffff) {
        if (len < 8)
            n->rx_dropped++;
        else
            n->bad_csum++;
        return;
    }
    if (m[0] == 8 && m[1] == 0) {   /* echo request: the same message back as a reply */
        u32 j;
        u8 *r = eth_start(n, &j, f + 6, ETH_IPV4);
        if (!r)
            return;
        memcpy(r + L4, m, len);
        r[L4] = 0;
        ip_hdr(n, r + 14, src, IP_ICMP, len);
        l4_send(n, j, r, len, 2, 0);
        n->icmp_echo++;
    } else if (m[0] == 0 && o->n == n && o->kind == OP_PING && o->waiting && src == o->dst_ip &&
               get16(m + 4) == o->id && get16(m + 6) == (u32)o->sent) {
        o->received++;
        o->waiting = 0;
    } else {
        n->rx_dropped++;
    }
}

static void rx_udp(struct nif *n, const u8 *f, u32 src, const u8 *u, u32 len)
{
    struct net_op *o = &netop;
    u32 ulen = len >= 8 ? get16(u + 4) : 0;
    if (ulen < 8 || ulen > len) {
        n->rx_dropped++;
        return;
    }
    if (get16(u + 6) && fold(sum16(u, ulen, pseudo(src, n->ip, IP_UDP, ulen))) != 0xffff) {
        n->bad_csum++;
        return;
    }
    u32 sport = get16(u), dport = get16(u + 2);
    if (udp_echo_port && dport == udp_echo_port) {
        u32 j;
        u8 *r = eth_start(n, &j, f + 6, ETH_IPV4);
        if (!r)
            return;
        memcpy(r + L4, u, ulen);
        put16(r + L4, dport);
        put16(r + L4 + 2, sport);
        ip_hdr(n, r + 14, src, IP_UDP, ulen);
        l4_send(n, j, r, ulen, 6, pseudo(n->ip, src, IP_UDP, ulen));
        n->udp_echo++;
    } else if (o->n == n && o->kind == OP_UDP && o->waiting && dport == o->sport && src == o->dst_ip &&
               sport == o->dst_port) {
        u64 base = (o->sent - 1) * o->bytes;
        int same = ulen - 8 == o->bytes;
        for (u32 k = 0; same && k < o->bytes; k++)
            same = u[8 + k] == pattern_byte(o->seed, base + k);
        if (same)
            o->received++;
        else
            o->mismatched++;
        o->waiting = 0;
    } else {
        n->rx_dropped++;
    }
}

static void rx_ipv4(struct nif *n, const u8 *f, u32 len)
{
    const u8 *ip = f + 14;
    u32 iplen = len - 14, ihl = (ip[0] & 15) * 4u, tot = iplen >= 20 ? get16(ip + 2) : 0;
    if (!n->ip || iplen < 20 || ip[0] >> 4 != 4 || ihl < 20 || tot < ihl || tot > iplen || get32(ip + 16) != n->ip ||
        (get16(ip + 6) & 0x3fff)) {
        n->rx_dropped++;
        return;
    }
    if (fold(sum16(ip, ihl, 0)) != 0xffff) {
        n->bad_csum++;
        return;
    }
    u32 src = get32(ip + 12), l4len = tot - ihl;
    if (ip[9] == IP_ICMP && l4len <= NET_FRAME - L4)
        rx_icmp(n, f, src, ip + ihl, l4len);
    else if (ip[9] == IP_UDP && l4len <= NET_FRAME - L4)
        rx_udp(n, f, src, ip + ihl, l4len);
    else
        n->rx_dropped++;
}

/* A received frame behind its virtio header. A partial checksum (NEEDS_CSUM) is completed first. */
void net_rx_frame(struct nif *n, u8 *buf, u32 len)
{
    const struct net_hdr *h = (const struct net_hdr *)buf;
    u8 *f = buf + NET_HDR;
    u32 flen = len - NET_HDR;
    n->rx_pkts++;
    n->rx_bytes += flen;
    if (flen < 14 || (!mac_eq(f, n->d->mac) && !mac_eq(f, bcast))) {
        n->rx_dropped++;
        return;
    }
    u32 type = get16(f + 12);
    if (h->flags & NET_HDR_F_NEEDS_CSUM) {
        u32 cs = h->csum_start, co = h->csum_offset, end = flen;
        if (type == ETH_IPV4 && flen >= L4 && 14 + get16(f + 16) < end)
            end = 14 + get16(f + 16);   /* not over Ethernet padding */
        if (cs + co + 2 > end) {
            n->bad_csum++;
            return;
        }
        put16(f + cs + co, 0xffff & ~fold(sum16(f + cs, end - cs, 0)));
    }
    if (type == ETH_ARP)
        rx_arp(n, f, flen);
    else if (type == ETH_IPV4)
        rx_ipv4(n, f, flen);
    else
        n->rx_dropped++;
}

/* ---- client commands ---- */

static int send_ping(struct nif *n, struct net_op *o)
{
    u32 j, len = 64;
    u8 *f = eth_start(n, &j, o->dst_mac, ETH_IPV4);
    if (!f)
        return 0;
    u8 *m = f + L4;
    m[0] = 8;
    m[1] = 0;
    put16(m + 4, o->id);
    put16(m + 6, (u32)o->sent + 1);
    for (u32 k = 8; k < len; k++)
        m[k] = (u8)k;
    ip_hdr(n, f + 14, o->dst_ip, IP_ICMP, len);
    l4_send(n, j, f, len, 2, 0);
    return 1;
}

/* Datagram i: byte k of its payload is pattern byte i*bytes + k of the seed. */
static int send_udp(struct nif *n, struct net_op *o, u64 i)
{
    u32 j, ulen = 8 + o->bytes;
    u8 *f = eth_start(n, &j, o->dst_mac, ETH_IPV4);
    if (!f)
        return 0;
    u8 *u = f + L4;
    put16(u, o->sport);
    put16(u + 2, o->dst_port);
    put16(u + 4, ulen);
    for (u32 k = 0; k < o->bytes; k++)
        u[8 + k] = pattern_byte(o->seed, i * o->bytes + k);
    ip_hdr(n, f + 14, o->dst_ip, IP_UDP, ulen);
    l4_send(n, j, f, ulen, 6, pseudo(n->ip, o->dst_ip, IP_UDP, ulen));
    return 1;
}

/* Resolves the peer (ARP every 250 ms, 1 s in all), then: ping and udp send one request and wait up
 * to 1 s for its answer; flood sends while transmit buffers are free (done after 1 s without one). */
void net_drive(struct nif *n)
{
    struct net_op *o = &netop;
    if (!o->resolved) {
        const u8 *m = arp_lookup(n, o->dst_ip);
        if (m) {
            memcpy(o->dst_mac, m, 6);
            o->resolved = 1;
            o->waiting = 0;
            o->since = ticks;
        } else {
            if (ticks - o->arp_start > HZ)
                o->done = 1;
            else if (!o->waiting || ticks - o->since >= HZ / 4) {
                arp_send(n, 1, bcast, nomac, o->dst_ip);
                o->waiting = 1;
                o->since = ticks;
            }
            return;
        }
    }
    if (o->kind == OP_FLOOD) {
        while (o->sent < o->count && send_udp(n, o, o->sent)) {
            o->sent++;
            o->since = ticks;
        }
        if (o->sent == o->count || ticks - o->since > HZ)
            o->done = 1;
        return;
    }
    if (o->waiting) {
        if (ticks - o->since <= HZ)
            return;
        o->waiting = 0;             /* timed out */
    }
    if (o->sent == o->count) {
        o->done = 1;
        return;
    }
    if (o->kind == OP_PING ? send_ping(n, o) : send_udp(n, o, o->sent)) {
        o->sent++;
        o->waiting = 1;
        o->since = ticks;
    }
}
