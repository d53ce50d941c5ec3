/* virtio-net and a small IPv4 peer: ARP, ICMP echo, UDP echo and the `net` client commands.
 * vio_net.c is the ring-3 driver (buffers, receive/transmit/control queues, the poll job), net.c the
 * ring-3 stack (frames in, replies out, checksums), net_cmd.c ring 0 (options, commands, dispatch).
 * Buffers live in the device area (README "Memory layout"): net device i at DA_NET + 256 KiB·i. */
#ifndef NET_H
#define NET_H
#include "virtio.h"

#define NET_MAX      4              /* net devices driven, in virtio device order */
#define NET_AREA     0x40000UL      /* per net device */
#define NET_RX_N     32             /* receive buffers posted */
#define NET_TX_N     24             /* transmit buffers */
#define NET_BUF      2048           /* receive and transmit buffer size */
#define NET_MRG_BUF  1024           /* receive buffer size with MRG_RXBUF: a full frame spans two */
#define NET_RX_OFF   0              /* area offsets: receive buffers */
#define NET_TX_OFF   0x10000        /* transmit buffers */
#define NET_CTL_OFF  0x20000        /* control command {class, cmd} and its ack byte at + 16 */
#define NET_ASM_OFF  0x21000        /* a frame put together from several merged buffers */
#define NET_FRAME    1514           /* largest frame sent or reassembled (no VLAN, no GSO) */
#define NET_UDP_MAX  1472           /* largest UDP payload: NET_FRAME - 14 - 20 - 8 */
#define NET_ARP_N    8
#define NET_BUDGET   64             /* frames handled per poll job; the console runs in between */

#define NET_HDR_F_NEEDS_CSUM 1

struct net_hdr {
    u8 flags, gso_type;
    u16 hdr_len, gso_size, csum_start, csum_offset, num_buffers;
} __attribute__((packed));

struct arp_ent { u32 ip; u8 mac[6]; u64 tick; };

struct nif {
    struct vdev *d;
    u32 index, ready;
    u32 ip, prefix;                 /* host byte order; ip 0: unnumbered */
    u64 area;
    u32 rx_len;                     /* size of each posted receive buffer */
    u32 tx_busy;                    /* bitmask of transmit buffers in flight */
    u32 asm_len, asm_left;          /* merged buffers: bytes gathered, buffers still to come */
    u32 cfg_changed;                /* set by ring 0 after a configuration-change interrupt */
    u32 want_announce, want_ack, ctl_busy;
    u64 irq_snap;
    u16 ip_id;
    struct arp_ent arp[NET_ARP_N];
    u64 rx_pkts, rx_bytes, tx_pkts, tx_bytes, rx_dropped, arp_rx, arp_tx, icmp_echo, udp_echo, bad_csum, announces;
};

/* The client command in progress (`net ping|udp|flood`); ring 0 waits until done. */
enum { OP_NONE, OP_PING, OP_UDP, OP_FLOOD };
struct net_op {
    u32 kind, done;
    struct nif *n;
    u32 dst_ip, dst_port, sport, bytes;
    u64 count, sent, received, mismatched, seed;
    u16 id;
    u8 dst_mac[6];
    u32 resolved, waiting;
    u64 since;                      /* tick of the last request sent (ARP or echo) or of tx progress */
    u64 arp_start;
};

extern struct nif nifs[NET_MAX];
extern u32 nnif;
extern u32 udp_echo_port;           /* 0: no echo service */
extern struct net_op netop;

/* vio_net.c (ring 3) */
u64 user_net_start(u64 nif);        /* after device init: posts the receive buffers */
u64 user_net_poll(u64 nif);         /* config, control, transmit, up to NET_BUDGET frames, the client op */
u8 *net_tx_buf(struct nif *n, u32 *j);                  /* a free transmit frame buffer, 0 if none */
void net_tx_send(struct nif *n, u32 j, u32 len, u32 csum_start, u32 csum_off);  /* csum_start 0: none */
int net_tx_csum(struct nif *n);     /* 1 if the device completes partial checksums */
u32 net_tx_free(struct nif *n);

/* net.c (ring 3) */
void net_rx_frame(struct nif *n, u8 *buf, u32 len);    /* buf: virtio header, then the frame */
void net_announce(struct nif *n);   /* a gratuitous ARP */
void net_drive(struct nif *n);      /* the client op's next step */

/* net_cmd.c (ring 0) */
void net_option(const char *tok);   /* ip= and udp_echo= before " -- " */
void net_attach(struct vdev *d, int ok);
int net_poll(void);
int net_command(char **argv, int argc);
#endif
