/* virtio 1.x over MMIO (Version 2): transport, split virtqueues, and the blk/rng/vsock drivers.
 * virtio.c is ring 0 (discovery, IOAPIC routing, the wait loop, console commands); vio_user.c is
 * ring 3 (register access, init, descriptor chains, notifications, reaping, patterns and digests).
 * Everything here lives in kernel .bss, which ring 3 can reach (all pages are user pages). */
#ifndef VIRTIO_H
#define VIRTIO_H
#include "kernel.h"

#define MAX_VDEV      16
#define VQ_MAX        256           /* queue size cap (power of two) */
#define VQ_SLOTS      64            /* requests in flight per device */
#define SLOT_BYTES    640           /* per-slot header, status, id buffer and indirect table */
#define SLOT_IND_OFF  128
#define IND_MAX       32            /* indirect table entries per request */
#define CHAIN_MAX     (IND_MAX + 2)
#define DEV_CTL_BYTES 0x10000       /* per device: 3 queues of 8 KiB + 64 slots */

/* The device area: a fixed block at the top of RAM (see README "Memory layout"). */
#define DEV_AREA_BYTES (40UL << 20)
#define DA_CTL         0            /* + dev * 64 KiB: rings and request slots */
#define DA_SBUF        (1UL << 20)  /* + dev * 64 KiB: small buffers (rng) */
#define DA_VSOCK       (2UL << 20)  /* 1 MiB: vsock buffers */
#define DA_EVIL        (3UL << 20)  /* 1 MiB: misbehaving-driver tables */
#define DA_DATA        (4UL << 20)  /* 32 MiB: blk data buffers */
#define DA_DATA_BYTES  (32UL << 20)
#define DA_NET         (36UL << 20) /* + net device * 256 KiB: net buffers (net.h) */
#define DA_BALLOON     (38UL << 20) /* 512 KiB: a 4th queue per device (+ dev * 8 KiB), balloon buffers (balloon.h) */

/* MMIO registers */
#define VM_MAGIC      0x000
#define VM_VERSION    0x004
#define VM_DEVICE_ID  0x008
#define VM_DEV_FEAT   0x010
#define VM_DEV_FSEL   0x014
#define VM_DRV_FEAT   0x020
#define VM_DRV_FSEL   0x024
#define VM_QSEL       0x030
#define VM_QNUM_MAX   0x034
#define VM_QNUM       0x038
#define VM_QREADY     0x044
#define VM_QNOTIFY    0x050
#define VM_ISR        0x060
#define VM_ISR_ACK    0x064
#define VM_STATUS     0x070
#define VM_QDESC      0x080
#define VM_QDRIVER    0x090
#define VM_QDEVICE    0x0a0
#define VM_CFG_GEN    0x0fc
#define VM_CONFIG     0x100

#define ST_ACK        1
#define ST_DRIVER     2
#define ST_DRIVER_OK  4
#define ST_FEATURES_OK 8
#define ST_NEEDS_RESET 64
#define ST_FAILED     128

#define F_INDIRECT    (1UL << 28)
#define F_EVENT_IDX   (1UL << 29)
#define F_VERSION_1   (1UL << 32)

#define BLK_F_SIZE_MAX 1
#define BLK_F_SEG_MAX  2
#define BLK_F_RO       5
#define BLK_F_BLK_SIZE 6
#define BLK_F_FLUSH    9
#define BLK_F_DISCARD  13
#define BLK_F_WZ       14

#define NET_F_CSUM           0      /* the driver may hand partial checksums to the device */
#define NET_F_GUEST_CSUM     1      /* the device may hand partial checksums to the driver */
#define NET_F_MAC            5
#define NET_F_MRG_RXBUF      15
#define NET_F_STATUS         16
#define NET_F_CTRL_VQ        17
#define NET_F_GUEST_ANNOUNCE 21
#define NET_S_LINK_UP        1
#define NET_S_ANNOUNCE       2
#define NET_HDR              12     /* virtio_net_hdr with num_buffers (VERSION_1) */

#define BLK_T_IN      0
#define BLK_T_OUT     1
#define BLK_T_FLUSH   4
#define BLK_T_GET_ID  8
#define BLK_T_DISCARD 11
#define BLK_T_WZ      13
#define OP_RNG        0x100         /* not a blk type: one device-writable buffer */

#define DESC_NEXT     1
#define DESC_WRITE    2
#define DESC_INDIRECT 4

#define DEVID_NET     1
#define DEVID_BLK     2
#define DEVID_RNG     4
#define DEVID_VSOCK   19
#define DEVID_BALLOON 5


struct vq_desc { u64 addr; u32 len; u16 flags, next; };

struct vq {
    u32 num, qidx;
    u16 avail_idx, last_used, nfree, kicked;
    volatile struct vq_desc *desc;
    volatile u16 *avail;            /* flags, idx, ring[num], used_event */
    volatile u8 *used;              /* flags, idx, ring[num] {u32 id, u32 len}, avail_event */
    u16 free[VQ_MAX];
    u8 head_slot[VQ_MAX];           /* 0xff: no request */
    u32 bad_id;                     /* the last used entry that named no request, */
    u16 bad_at, bad_idx, bad;       /* its ring position, the device's used index then, how many */
};

struct seg { u64 addr; u32 len; u16 flags; };

/* One per device. Ring 0 fills base/irq/index; ring 3 does the rest at init. */
struct vdev {
    u32 index, irq, devid, vector;
    u64 base, size;
    u64 offered, features;
    u32 state;                      /* VST_* */
    u32 init_err;                   /* why init failed (VERR_*) */
    u32 want_indirect, want_event_idx, poll, nq;
    u64 ctl, sbuf;
    struct vq q[4];
    u64 slot_busy;
    u16 slot_chain[VQ_SLOTS][CHAIN_MAX];
    u8 slot_nchain[VQ_SLOTS];
    u32 slot_len[VQ_SLOTS];         /* used length reported by the device */
    u64 slot_req[VQ_SLOTS];         /* request number */
    u64 refuse;                     /* device features the driver does not take (`net opt`) */
    /* virtio-blk configuration */
    u64 capacity;
    u32 size_max, seg_max, blk_size, ro, flush, discard, wz;
    u32 max_discard_sectors, max_wz_sectors, wz_may_unmap;
    u32 seg_bytes, max_segs;
    u64 max_req_bytes;
    /* virtio-vsock configuration */
    u64 guest_cid;
    /* virtio-net configuration */
    u8 mac[6];
    u16 net_status;                 /* VIRTIO_NET_S_*; LINK_UP without VIRTIO_NET_F_STATUS */
};
enum { VST_NONE, VST_OK, VST_FAILED };
enum { VERR_NONE, VERR_MAGIC, VERR_VERSION, VERR_NODEV, VERR_FEATURES, VERR_QUEUE, VERR_RESET };

/* Read by the interrupt stub (isr.S): 32 bytes per device. */
struct vio_irq { u64 base, count, status, pad; };
extern volatile struct vio_irq vio_irq[MAX_VDEV];
extern struct vdev vdevs[MAX_VDEV];
extern u32 nvdev;
extern u64 dev_area;

/* A batch of requests the ring-3 engine keeps in flight. */
enum { RUN_RANGE, RUN_RAND, RUN_SEQ, RUN_ONE };
enum { STEP_DONE, STEP_WAIT, STEP_TIMEOUT, STEP_PROTO, STEP_NOSPACE, STEP_MORE };
struct blk_run {
    struct vdev *d;
    u32 op, kind;
    u64 sector, nsect;              /* RUN_RANGE: the batch's first sector and length */
    u64 req_sect;                   /* sectors per request */
    u64 nreq, submitted, completed;
    u32 qd, inflight;
    u64 seed;
    u64 buf;                        /* data buffers */
    u32 nbuf;                       /* bench: buffers reused round robin */
    u32 bad;                        /* first non-OK status; 0x100 protocol error */
    u64 irq_snap;
    u64 disk_sectors;
    u32 wz_unmap;
    /* pattern / digest state (RUN_RANGE) */
    u64 digest;
    u64 mismatch;                   /* first mismatching sector + 1, 0 if none */
    u32 verify;
    /* rng */
    u64 want_bytes, got_bytes;
    u8 seen[256];
};

/* vio_user.c (ring 3) */
u64 user_vio_init(u64 dev);
u64 user_vio_reset(u64 dev);
u64 user_vio_status(u64 dev);
u64 user_blk_step(u64 run);
u64 user_blk_pattern(u64 run);
u64 user_blk_check(u64 run);
u64 user_rng_step(u64 run);
u64 user_vio_evil(u64 arg);

/* vio_user.c's split-queue helpers, for the other ring-3 drivers (vio_net.c) */
int slot_alloc(struct vdev *d);
int vq_add(struct vdev *d, struct vq *q, const struct seg *sg, u32 n, u32 s);
void vq_kick(struct vdev *d, struct vq *q);
void vq_irq(struct vdev *d, struct vq *q, int on);
int vq_get(struct vdev *d, struct vq *q, u32 *slot);
int vq_pending(struct vq *q);
int vio_post(struct vdev *d, u32 qi, const struct seg *sg, u32 n, u64 cookie);  /* a chain in a free slot */
u8 pattern_byte(u64 seed, u64 k);   /* byte k of the `fill` pattern read as bytes */
void vio_read_config(struct vdev *d);

struct evil_run { struct vdev *d; u32 kind; u32 result; u64 area; };
#define EVIL_TIMEOUT 0x1000
#define EVIL_NEEDS_RESET 0x1001
#define EVIL_NET_FIRST 8            /* kinds from here on are for net devices' transmit queue */

/* virtio.c (ring 0) */
const char *virtio_strip(const char *line, const char *cmds);
u64 virtio_reserve(u64 *seg_base, u64 *seg_len);
void virtio_boot(void);
int virtio_command(char **argv, int argc);
int dev_init(struct vdev *d);
const char *state_name(struct vdev *d);

/* ---- virtio-vsock (one device: the first with DeviceID 19) ---- */
#define VS_HDR       44
#define VS_RX_N      32             /* receive buffers posted */
#define VS_TX_N      32             /* transmit buffers */
#define VS_EV_N      4
#define VS_PAY       4096
#define VS_CONN      16
#define VS_LISTEN    16
#define VS_RING      32768          /* per-connection receive buffer: our buf_alloc */
#define VS_HOST_CID  2

struct vs_hdr {
    u64 src_cid, dst_cid;
    u32 src_port, dst_port, len;
    u16 type, op;
    u32 flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

enum { VC_FREE, VC_CONNECTING, VC_ESTABLISHED, VC_CLOSING };
enum { VR_ECHO, VR_CLIENT };
enum { VS_PENDING, VS_OK, VS_RESET, VS_REFUSED, VS_TIMEOUT, VS_MISMATCH };

struct vconn {
    u32 state, role;
    u32 lport, pport;
    u64 pcid;
    u32 rx_cnt, fwd_cnt, reported_fwd;  /* bytes received, consumed, last fwd_cnt sent */
    u32 peer_alloc, peer_fwd, tx_cnt;   /* peer credit: peer_alloc - (tx_cnt - peer_fwd) */
    u32 peer_shut, credit_requested;
    u32 want_rst, want_response, want_credit;
    u64 since;                          /* tick of the last state change (closing timeout) */
    u8 *ring;
};

struct vsock {
    struct vdev *d;
    u32 ready;
    u64 cid, area;
    u32 listen[VS_LISTEN], nlisten;
    struct vconn c[VS_CONN];
    u32 tx_busy;                        /* bitmask of transmit buffers in flight */
    u32 next_port;
    int client;                         /* connection of `vsock connect`, -1 if none */
    u64 c_want, c_sent, c_got, c_seed, c_digest, c_want_port;
    u32 c_status;
    u64 irq_snap;
    u64 rx_pkts, tx_pkts, rx_bytes, tx_bytes, resets_sent, resets_rcvd, transport_resets;
};
extern struct vsock vsock;

u64 user_vsock_start(u64 vs);       /* after device init: posts receive and event buffers */
u64 user_vsock_poll(u64 vs);        /* everything: events, receive, connections, transmit */
u64 user_vsock_connect(u64 vs);     /* opens the client connection (REQUEST) */
int virtio_poll(void);
#endif
