/* virtio-net, ring-0 side: the ip= and udp_echo= options, attaching net devices, running the poll job
 * after their interrupts (the idle loop), and the `net` console commands. */
#include "net.h"

struct nif nifs[NET_MAX];
u32 nnif;
u32 udp_echo_port;
struct net_op netop;
static u32 boot_ip[NET_MAX], boot_prefix[NET_MAX];
static u32 more[NET_MAX];           /* the last poll stopped at its budget */
static u32 op_serial;

/* a.b.c.d; *end is left after it. */
static int scan_ip(const char *s, const char **end, u32 *ip)
{
    u32 v = 0;
    for (u32 i = 0; i < 4; i++) {
        u32 b = 0, nd = 0;
        if (i && *s++ != '.')
            return 0;
        while (*s >= '0' && *s <= '9' && nd < 4)
            b = b * 10 + (u32)(*s++ - '0'), nd++;
        if (!nd || b > 255)
            return 0;
        v = v << 8 | b;
    }
    *end = s;
    *ip = v;
    return 1;
}

/* a.b.c.d/p, ending at stop (or the end of the string). */
static int scan_cidr(const char *s, const char **end, u32 *ip, u32 *prefix)
{
    u32 p = 0, nd = 0;
    if (!scan_ip(s, &s, ip) || *s++ != '/')
        return 0;
    while (*s >= '0' && *s <= '9' && nd < 3)
        p = p * 10 + (u32)(*s++ - '0'), nd++;
    if (!nd || p > 32 || !*ip)
        return 0;
    *end = s;
    *prefix = p;
    return 1;
}

static int parse_ip(const char *s, u32 *ip)
{
    return scan_ip(s, &s, ip) && !*s;
}

static int prefixed(const char *t, const char *p)
{
    while (*p)
        if (*t++ != *p++)
            return 0;
    return 1;
}

/* A command-line token before " -- ": ip=A.B.C.D/P[,...] (net devices in order), udp_echo=PORT. */
void net_option(const char *t)
{
    if (prefixed(t, "ip=")) {
        const char *s = t + 3;
        for (u32 i = 0; i < NET_MAX; i++) {
            if (!scan_cidr(s, &s, &boot_ip[i], &boot_prefix[i])) {
                boot_ip[i] = 0;
                return;
            }
            if (*s++ != ',')
                return;
        }
    } else if (prefixed(t, "udp_echo=")) {
        u32 p = 0;
        for (const char *s = t + 9; *s >= '0' && *s <= '9' && p < 65536; s++)
            p = p * 10 + (u32)(*s - '0');
        udp_echo_port = p < 65536 ? p : 0;
    }
}

/* After each (re)initialisation of a net device: the first NET_MAX get a nif, in device order. */
void net_attach(struct vdev *d, int ok)
{
    struct nif *n = 0;
    for (u32 i = 0; i < nnif && !n; i++)
        if (nifs[i].d == d)
            n = &nifs[i];
    if (!n) {
        if (nnif == NET_MAX)
            return;
        n = &nifs[nnif];
        n->index = nnif++;
        n->d = d;
        n->area = dev_area + DA_NET + NET_AREA * n->index;
        n->ip = boot_ip[n->index];
        n->prefix = boot_prefix[n->index];
    }
    more[n->index] = 0;
    n->ready = ok && run_job(this_cpu(), user_net_start, (u64)n) == 0 && !this_cpu()->job_failed;
}

static int usable(struct nif *n)
{
    return n->ready && n->d->state == VST_OK;
}

/* One poll job; a protocol error or DEVICE_NEEDS_RESET re-initialises the device. */
static u64 poll_once(struct nif *n)
{
    struct cpu *c = this_cpu();
    volatile struct vio_irq *q = &vio_irq[n->d->index];
    if (q->status & 2) {            /* a configuration change */
        q->status &= ~2UL;
        n->cfg_changed = 1;
    }
    u64 r = run_job(c, user_net_poll, (u64)n);
    if (c->job_failed || r == STEP_PROTO) {
        dev_init(n->d);
        return STEP_PROTO;
    }
    more[n->index] = r == STEP_MORE;
    return r;
}

/* Idle loop: each net device with news (an interrupt, a configuration change, frames left over from
 * the last budget) gets one poll job. Returns 1 if any ran. */
int net_poll(void)
{
    int did = 0;
    for (u32 i = 0; i < nnif; i++) {
        struct nif *n = &nifs[i];
        if (!usable(n))
            continue;
        if (vio_irq[n->d->index].count == n->irq_snap && !(vio_irq[n->d->index].status & 2) && !more[i] &&
            !n->want_announce)
            continue;
        poll_once(n);
        did = 1;
    }
    return did;
}

/* Runs the client op set up in netop until it is done, halting for the device's interrupt or a tick. */
static void run_op(struct nif *n)
{
    struct net_op *o = &netop;
    o->n = n;
    o->done = o->resolved = o->waiting = 0;
    o->sent = o->received = o->mismatched = 0;
    o->arp_start = o->since = ticks;
    o->id = (u16)(0x4e00 + op_serial);
    o->sport = 49152 + op_serial % 16384;
    op_serial++;
    while (!o->done) {
        u64 r = poll_once(n);
        if (r == STEP_PROTO)
            break;
        if (o->done || r == STEP_MORE)
            continue;
        u64 t = ticks;
        while (vio_irq[n->d->index].count == n->irq_snap && ticks == t)
            sti_hlt();
    }
    o->n = 0;
    o->kind = OP_NONE;
}

/* a.b.c.d, or a.b.c.d/p when prefix is not ~0, or "none" for 0; buf holds 19 bytes. */
static const char *ip_str(char *buf, u32 ip, u32 prefix)
{
    char *p = buf;
    if (!ip)
        return "none";
    for (int i = 3; i >= -1; i--) {
        u32 v = i >= 0 ? ip >> (8 * i) & 255 : prefix;
        if (i < 0 && prefix == ~0u)
            break;
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p++ = i > 0 ? '.' : '/';
    }
    p[-1] = 0;
    return buf;
}

static const char *mac_str(char *s, const u8 *m)
{
    static const char hex[] = "0123456789abcdef";
    for (u32 i = 0; i < 6; i++) {
        s[3 * i] = hex[m[i] >> 4];
        s[3 * i + 1] = hex[m[i] & 15];
        s[3 * i + 2] = i < 5 ? ':' : 0;
    }
    return s;
}

static void print_stats(struct nif *n)
{
    kprintf("NET STATS dev=%u rx_pkts=%u rx_bytes=%u tx_pkts=%u tx_bytes=%u rx_dropped=%u arp_rx=%u arp_tx=%u "
            "icmp_echo=%u udp_echo=%u bad_csum=%u announces=%u\n", (u64)n->index, n->rx_pkts, n->rx_bytes,
            n->tx_pkts, n->tx_bytes, n->rx_dropped, n->arp_rx, n->arp_tx, n->icmp_echo, n->udp_echo, n->bad_csum,
            n->announces);
}

static struct nif *get_nif(const char *arg, int need_ip)
{
    u64 i;
    if (!parse_u64(arg, &i) || i >= nnif) {
        kprintf("ERROR net: no device %s\n", arg);
        return 0;
    }
    struct nif *n = &nifs[i];
    if (!usable(n)) {
        kprintf("ERROR net: device %u is not ready\n", i);
        return 0;
    }
    if (need_ip && !n->ip) {
        kprintf("ERROR net: device %u has no address\n", i);
        return 0;
    }
    return n;
}

static const struct { const char *name; u32 bit; } opts[] = {
    { "mrg_rxbuf", NET_F_MRG_RXBUF }, { "csum", NET_F_CSUM }, { "guest_csum", NET_F_GUEST_CSUM },
    { "event_idx", 29 }, { "indirect", 28 },
};

static void cmd_opt(char **argv, int argc)
{
    u64 v;
    u32 k = 0;
    if (argc != 5 || !parse_u64(argv[4], &v) || v > 1) {
        kprintf("ERROR usage: net opt <dev> <mrg_rxbuf|csum|guest_csum|event_idx|indirect> <0|1>\n");
        return;
    }
    while (k < sizeof opts / sizeof opts[0] && !streq(opts[k].name, argv[3]))
        k++;
    if (k == sizeof opts / sizeof opts[0]) {
        kprintf("ERROR net opt: unknown option %s\n", argv[3]);
        return;
    }
    u64 i;
    if (!parse_u64(argv[2], &i) || i >= nnif) {
        kprintf("ERROR net: no device %s\n", argv[2]);
        return;
    }
    struct vdev *d = nifs[i].d;
    if (opts[k].bit == 28)
        d->want_indirect = (u32)v;
    else if (opts[k].bit == 29)
        d->want_event_idx = (u32)v;
    else if (v)
        d->refuse &= ~(1UL << opts[k].bit);
    else
        d->refuse |= 1UL << opts[k].bit;
    dev_init(d);
    kprintf("NET OPT dev=%u", i);
    for (u32 j = 0; j < sizeof opts / sizeof opts[0]; j++)
        kprintf(" %s=%u", opts[j].name, (u64)!!(d->features & (1UL << opts[j].bit)));
    kprintf(" status=%s\n", state_name(d));
}

/* ping, udp and flood: ip and numbers, checked; returns the device or 0 after an error line. */
static struct nif *op_args(char **argv, int argc, u32 kind)
{
    static const char *const usage[] = { "", "ping <dev> <a.b.c.d> <count>",
                                          "udp <dev> <a.b.c.d> <port> <bytes> <count> <seed>",
                                          "flood <dev> <a.b.c.d> <port> <bytes> <count>" };
    static const int nargs[] = { 0, 5, 8, 7 };
    struct net_op *o = &netop;
    u64 v[4] = { 0 };
    int ok = argc == nargs[kind] && parse_ip(argv[3], &o->dst_ip);
    for (int a = 4; ok && a < argc; a++)
        ok = parse_u64(argv[a], &v[a - 4]);
    if (kind != OP_PING && ok)
        ok = v[0] && v[0] < 65536 && v[1] <= NET_UDP_MAX;
    if (!ok) {
        kprintf("ERROR usage: net %s (bytes at most %u)\n", usage[kind], (u64)NET_UDP_MAX);
        return 0;
    }
    struct nif *n = get_nif(argv[2], 1);
    if (!n)
        return 0;
    o->kind = kind;
    o->count = kind == OP_PING ? v[0] : v[2];
    o->dst_port = (u32)v[0];
    o->bytes = (u32)v[1];
    o->seed = v[3];
    return n;
}

static void cmd_net(char **argv, int argc)
{
    u64 v;
    struct nif *n;
    char ipb[20], mac[18];
    const char *sub = argc > 1 ? argv[1] : "";
    if (argc == 1) {
        for (u32 i = 0; i < nnif; i++) {
            n = &nifs[i];
            kprintf("NET dev=%u mac=%s ip=%s link=%s features=0x%X status=%s\n", (u64)i, mac_str(mac, n->d->mac),
                    ip_str(ipb, n->ip, n->prefix), (n->d->net_status & NET_S_LINK_UP) ? "up" : "down",
                    n->d->features, n->ready ? state_name(n->d) : "failed");
        }
        kprintf("NET devices=%u\n", (u64)nnif);
    } else if (streq(sub, "ip") && argc == 4) {
        const char *e;
        u32 ip, prefix;
        if (!scan_cidr(argv[3], &e, &ip, &prefix) || *e) {
            kprintf("ERROR usage: net ip <dev> <a.b.c.d/p>\n");
        } else if ((n = get_nif(argv[2], 0))) {
            n->ip = ip;
            n->prefix = prefix;
            kprintf("NET IP dev=%u ip=%s\n", (u64)n->index, ip_str(ipb, ip, prefix));
        }
    } else if (streq(sub, "echo") && argc == 3) {
        if (!parse_u64(argv[2], &v) || !v || v > 65535) {
            kprintf("ERROR usage: net echo <port>\n");
            return;
        }
        udp_echo_port = (u32)v;
        kprintf("NET ECHO port=%u\n", v);
    } else if (streq(sub, "stats") && argc <= 3) {
        if (argc == 3 && (n = get_nif(argv[2], 0)))
            print_stats(n);
        for (u32 i = 0; argc == 2 && i < nnif; i++)
            print_stats(&nifs[i]);
    } else if (streq(sub, "announce") && argc == 3) {
        if ((n = get_nif(argv[2], 1))) {
            n->want_announce = 1;
            poll_once(n);
            kprintf("NET ANNOUNCE dev=%u\n", (u64)n->index);
        }
    } else if (streq(sub, "opt")) {
        cmd_opt(argv, argc);
    } else if (streq(sub, "ping") || streq(sub, "udp") || streq(sub, "flood")) {
        u32 kind = streq(sub, "ping") ? OP_PING : streq(sub, "udp") ? OP_UDP : OP_FLOOD;
        if (!(n = op_args(argv, argc, kind)))
            return;
        u32 ip = netop.dst_ip, port = netop.dst_port;
        run_op(n);
        if (kind == OP_PING)
            kprintf("NET PING ip=%s sent=%u received=%u\n", ip_str(ipb, ip, ~0u), netop.sent, netop.received);
        else if (kind == OP_UDP)
            kprintf("NET UDP ip=%s port=%u sent=%u received=%u mismatched=%u\n", ip_str(ipb, ip, ~0u), (u64)port,
                    netop.sent, netop.received, netop.mismatched);
        else
            kprintf("NET FLOOD sent=%u\n", netop.sent);
    } else {
        kprintf("ERROR usage: net [ip <dev> <a.b.c.d/p> | echo <port> | stats [dev] | ping <dev> <a.b.c.d> <count> | "
                "udp <dev> <a.b.c.d> <port> <bytes> <count> <seed> | flood <dev> <a.b.c.d> <port> <bytes> <count> | "
                "announce <dev> | opt <dev> <feature> <0|1>]\n");
    }
}

/* Returns 1 if argv[0] was `net`. */
int net_command(char **argv, int argc)
{
    if (!streq(argv[0], "net"))
        return 0;
    cmd_net(argv, argc);
    return 1;
}
