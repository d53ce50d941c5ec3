// The C shim: kernel-header constants and calls Swift cannot import (variadic, or hidden
// behind _GNU_SOURCE). No logic lives here: every function is a one-line wrapper, except the
// SIGSYS reporter in SeccompReport.c (a signal handler must be async-signal-safe C) and the jail's
// child in Jail.c (between clone and exec only async-signal-safe calls may run).
// Only kernel UAPI headers are included here; the wrappers that need glibc's GNU extensions
// are defined in CLinux.c, so this module never redefines what Swift's Glibc module declares.
#pragma once
#include <linux/kvm.h>
#include <linux/memfd.h>
#include <linux/userfaultfd.h>
#include <stddef.h>
#include <stdint.h>
#include <spawn.h>

// KVM request numbers (function-like macros in <linux/kvm.h>).
static const unsigned long CLINUX_KVM_GET_API_VERSION = KVM_GET_API_VERSION;
static const unsigned long CLINUX_KVM_CREATE_VM = KVM_CREATE_VM;
static const unsigned long CLINUX_KVM_CHECK_EXTENSION = KVM_CHECK_EXTENSION;
static const unsigned long CLINUX_KVM_GET_VCPU_MMAP_SIZE = KVM_GET_VCPU_MMAP_SIZE;
static const unsigned long CLINUX_KVM_GET_SUPPORTED_CPUID = KVM_GET_SUPPORTED_CPUID;
static const unsigned long CLINUX_KVM_SET_TSS_ADDR = KVM_SET_TSS_ADDR;
static const unsigned long CLINUX_KVM_SET_IDENTITY_MAP_ADDR = KVM_SET_IDENTITY_MAP_ADDR;
static const unsigned long CLINUX_KVM_CREATE_IRQCHIP = KVM_CREATE_IRQCHIP;
static const unsigned long CLINUX_KVM_CREATE_PIT2 = KVM_CREATE_PIT2;
static const unsigned long CLINUX_KVM_IRQ_LINE = KVM_IRQ_LINE;
static const unsigned long CLINUX_KVM_SET_USER_MEMORY_REGION = KVM_SET_USER_MEMORY_REGION;
static const unsigned long CLINUX_KVM_GET_DIRTY_LOG = KVM_GET_DIRTY_LOG;
static const unsigned long CLINUX_KVM_CREATE_VCPU = KVM_CREATE_VCPU;
static const unsigned long CLINUX_KVM_RUN = KVM_RUN;
static const unsigned long CLINUX_KVM_GET_REGS = KVM_GET_REGS;
static const unsigned long CLINUX_KVM_SET_REGS = KVM_SET_REGS;
static const unsigned long CLINUX_KVM_GET_SREGS = KVM_GET_SREGS;
static const unsigned long CLINUX_KVM_SET_SREGS = KVM_SET_SREGS;
static const unsigned long CLINUX_KVM_SET_CPUID2 = KVM_SET_CPUID2;
static const unsigned long CLINUX_KVM_GET_MSRS = KVM_GET_MSRS;
static const unsigned long CLINUX_KVM_SET_MSRS = KVM_SET_MSRS;
static const unsigned long CLINUX_KVM_GET_LAPIC = KVM_GET_LAPIC;
static const unsigned long CLINUX_KVM_SET_LAPIC = KVM_SET_LAPIC;
static const unsigned long CLINUX_KVM_GET_MP_STATE = KVM_GET_MP_STATE;
static const unsigned long CLINUX_KVM_SET_MP_STATE = KVM_SET_MP_STATE;
static const unsigned long CLINUX_KVM_GET_FPU = KVM_GET_FPU;
static const unsigned long CLINUX_KVM_SET_FPU = KVM_SET_FPU;
static const unsigned long CLINUX_KVM_KVMCLOCK_CTRL = KVM_KVMCLOCK_CTRL;
static const unsigned long CLINUX_KVM_GET_MSR_INDEX_LIST = KVM_GET_MSR_INDEX_LIST;
static const unsigned long CLINUX_KVM_GET_XSAVE = KVM_GET_XSAVE;
static const unsigned long CLINUX_KVM_GET_XSAVE2 = KVM_GET_XSAVE2;
static const unsigned long CLINUX_KVM_SET_XSAVE = KVM_SET_XSAVE;
static const unsigned long CLINUX_KVM_GET_XCRS = KVM_GET_XCRS;
static const unsigned long CLINUX_KVM_SET_XCRS = KVM_SET_XCRS;
static const unsigned long CLINUX_KVM_GET_VCPU_EVENTS = KVM_GET_VCPU_EVENTS;
static const unsigned long CLINUX_KVM_SET_VCPU_EVENTS = KVM_SET_VCPU_EVENTS;
static const unsigned long CLINUX_KVM_GET_DEBUGREGS = KVM_GET_DEBUGREGS;
static const unsigned long CLINUX_KVM_SET_DEBUGREGS = KVM_SET_DEBUGREGS;
static const unsigned long CLINUX_KVM_GET_IRQCHIP = KVM_GET_IRQCHIP;
static const unsigned long CLINUX_KVM_SET_IRQCHIP = KVM_SET_IRQCHIP;
static const unsigned long CLINUX_KVM_GET_CLOCK = KVM_GET_CLOCK;
static const unsigned long CLINUX_KVM_SET_CLOCK = KVM_SET_CLOCK;
static const unsigned long CLINUX_KVM_GET_PIT2 = KVM_GET_PIT2;
static const unsigned long CLINUX_KVM_SET_PIT2 = KVM_SET_PIT2;

/// memfd_create(2), hidden behind _GNU_SOURCE in Swift's Glibc module.
int clinux_memfd_create(const char *name, unsigned int flags);
/// ioctl(2) with a pointer argument (ioctl is variadic).
int clinux_ioctl_ptr(int fd, unsigned long request, void *arg);
/// ioctl(2) with an integer argument.
int clinux_ioctl_int(int fd, unsigned long request, unsigned long arg);
/// mkostemp(3), a GNU extension.
int clinux_mkostemp(char *template_, int flags);
/// statfs(2)'s block size: the huge page size on a hugetlbfs mount; -1 with errno on failure.
long clinux_statfs_block_size(const char *path);
/// The same for an open file.
long clinux_fstatfs_block_size(int fd);
/// pthread_setname_np(3), a GNU extension: names the calling thread (15 bytes at most).
int clinux_set_thread_name(const char *name);
/// tgkill(2): sends a signal to one thread of this process (kicks a vCPU out of KVM_RUN).
int clinux_tgkill(int tgid, int tid, int sig);
/// gettid(2).
int clinux_gettid(void);
/// A Unix stream socket (close-on-exec, non-blocking) bound to `path`, not yet listening: the
/// control API creates its own so it knows the descriptor a live update hands to the next VMM.
/// -1 with errno on failure (ENAMETOOLONG for a path longer than sun_path).
int clinux_unix_socket_bind(const char *path);
/// close_range(first, ~0, CLOSE_RANGE_CLOEXEC): marks every descriptor from `first` up
/// close-on-exec in one call (Linux 5.11+); -1 with errno (ENOSYS, EINVAL) on older kernels.
int clinux_close_range_cloexec(unsigned int first);
/// Starts a child that shares this process's address space and descriptor table (CLONE_VM |
/// CLONE_FILES) and only sleeps: an exec then leaves the old address space and descriptors
/// (a VM's) to be torn down when the child dies, not during the exec. The child dies with its
/// parent (PR_SET_PDEATHSIG) and after 30 s at most. Returns its pid, or -1 with errno.
int clinux_spawn_teardown_holder(void);
/// pipe2(2) with O_CLOEXEC: both ends close-on-exec from the start, with no window in which
/// another thread's exec could inherit them. `ends` receives the read end, then the write end.
int clinux_pipe_cloexec(int ends[2]);
/// accept4(2) with SOCK_CLOEXEC, a GNU extension: the accepted socket is close-on-exec at once.
int clinux_accept_cloexec(int fd, void *address, unsigned int *length);
/// A Unix stream socket (close-on-exec, blocking) connected to `path`; -1 with errno.
int clinux_unix_socket_connect(const char *path);
/// epoll_create1(EPOLL_CLOEXEC).
int clinux_epoll_create(void);
/// epoll_ctl(2) with the event's mask and 64-bit user data (struct epoll_event is packed on
/// x86-64, which Swift does not import faithfully).
int clinux_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
/// One ready descriptor from epoll_wait: its event mask and user data.
struct clinux_epoll_event { uint32_t events; uint64_t data; };
/// epoll_wait(2) into at most `capacity` (≤ 64) unpacked events.
int clinux_epoll_wait(int epfd, struct clinux_epoll_event *events, int capacity, int timeout_ms);
static const int CLINUX_EPOLL_CTL_ADD = 1;
static const int CLINUX_EPOLL_CTL_DEL = 2;
static const int CLINUX_EPOLL_CTL_MOD = 3;
static const uint32_t CLINUX_EPOLLIN = 0x001;
static const uint32_t CLINUX_EPOLLOUT = 0x004;
static const uint32_t CLINUX_EPOLLERR = 0x008;
static const uint32_t CLINUX_EPOLLHUP = 0x010;
/// Non-zero if this CPU has SSE4.2 (the crc32 instruction).
int clinux_cpu_has_sse42(void);
// memmem(3), a GNU extension: the first occurrence of a byte string (engram mem search).
const void *clinux_memmem(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length);
/// Continues a raw (not inverted) CRC32C state over `length` bytes with the crc32 instruction.
uint32_t clinux_crc32c_sse42(uint32_t state, const void *data, size_t length);

_Static_assert(KVM_API_VERSION == 12, "Engram speaks KVM API version 12");
_Static_assert(sizeof(struct kvm_regs) == 144, "kvm_regs layout");
_Static_assert(sizeof(struct kvm_sregs) == 312, "kvm_sregs layout");

// ---- userfaultfd -------------------------------------------------------------------------
// Lazy restore (Paging) fills guest memory on demand through a userfaultfd; GuestMemory's
// Userfault folder is the only user. Request numbers are function-like macros, so they are
// restated as constants here; the plain numeric macros (UFFD_API, UFFD_FEATURE_*, modes,
// UFFD_EVENT_PAGEFAULT) import into Swift as they are.
static const unsigned long CLINUX_UFFDIO_API = UFFDIO_API;
static const unsigned long CLINUX_UFFDIO_REGISTER = UFFDIO_REGISTER;
static const unsigned long CLINUX_UFFDIO_UNREGISTER = UFFDIO_UNREGISTER;
static const unsigned long CLINUX_UFFDIO_WAKE = UFFDIO_WAKE;
static const unsigned long CLINUX_UFFDIO_COPY = UFFDIO_COPY;
static const unsigned long CLINUX_UFFDIO_ZEROPAGE = UFFDIO_ZEROPAGE;
static const unsigned long CLINUX_USERFAULTFD_IOC_NEW = USERFAULTFD_IOC_NEW;
/// Bits of uffdio_register.ioctls: which range ioctls the kernel allows on a registered range.
static const unsigned long long CLINUX_UFFD_IOCTL_COPY = 1ULL << _UFFDIO_COPY;
static const unsigned long long CLINUX_UFFD_IOCTL_ZEROPAGE = 1ULL << _UFFDIO_ZEROPAGE;
static const unsigned long long CLINUX_UFFD_IOCTL_WAKE = 1ULL << _UFFDIO_WAKE;

/// Ordered accesses to memory the guest shares (virtqueue indices and event words): C11 atomics,
/// which Swift cannot apply to memory it does not own.
static inline uint16_t clinux_load_acquire_u16(const void *p) { return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE); }
static inline void clinux_store_release_u16(void *p, uint16_t v) { __atomic_store_n((uint16_t *)p, v, __ATOMIC_RELEASE); }
static inline void clinux_fence_seq_cst(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
/// A shared bitmap word that device threads set bits in and a snapshot or migration takes whole:
/// the set publishes the bytes written before it, the take sees them.
static inline void clinux_or_release_u64(uint64_t *p, uint64_t bits) { __atomic_fetch_or(p, bits, __ATOMIC_RELEASE); }
static inline uint64_t clinux_load_relaxed_u64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint64_t clinux_take_acquire_u64(uint64_t *p) { return __atomic_exchange_n(p, 0, __ATOMIC_ACQUIRE); }

static const unsigned long CLINUX_KVM_IRQFD = KVM_IRQFD;
static const unsigned long CLINUX_KVM_IOEVENTFD = KVM_IOEVENTFD;
static const unsigned int CLINUX_KVM_IOEVENTFD_FLAG_DATAMATCH = KVM_IOEVENTFD_FLAG_DATAMATCH;

/// fallocate(2) with FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE (a GNU extension): the range reads as zeros.
int clinux_punch_hole(int fd, int64_t offset, int64_t length);

/// Overwrites the value of the environment variable `name` where it lies (for a variable the
/// process started with, that is the memory /proc/PID/environ shows) and removes it.
void clinux_scrub_environment(const char *name);
/// getrandom(2) with no flags (declared in <sys/random.h>, which Swift's Glibc module lacks).
long clinux_getrandom(void *buffer, size_t length);
/* copy_file_range(2) (a GNU extension in glibc), advancing both offsets. */
long clinux_copy_file_range(int in, int64_t *in_offset, int out, int64_t *out_offset, size_t length);
/// userfaultfd(2), which glibc does not wrap; flags are O_CLOEXEC, O_NONBLOCK, UFFD_USER_MODE_ONLY.
int clinux_userfaultfd(int flags);
/// eventfd(2), declared in <sys/eventfd.h> which Swift's Glibc module does not include;
/// EFD_CLOEXEC and EFD_NONBLOCK equal O_CLOEXEC and O_NONBLOCK (checked in CLinux.c).
int clinux_eventfd(unsigned int initial, int flags);

/// Attaches `fd` (an open /dev/net/tun) to the tap `name`, creating it when it does not exist
/// and the caller may: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR. The name the kernel used goes to
/// `actual` (16 bytes). 0, or -1 with errno.
int clinux_tap_attach(int fd, const char *name, char *actual);
/// TUNGETIFF: the interface `fd` is attached to (name into `actual`, 16 bytes) and its IFF_ flags.
int clinux_tap_query(int fd, char *actual, unsigned int *flags);
/// TUNSETVNETHDRSZ: the length of the virtio-net header before each frame.
int clinux_tap_set_header_size(int fd, int size);
/// TUNSETOFFLOAD with TUN_F_* bits: which offloaded frames the tap may hand us.
int clinux_tap_set_offload(int fd, unsigned int offloads);

static const unsigned int CLINUX_IFF_TAP = 0x0002;
static const unsigned int CLINUX_IFF_NO_PI = 0x1000;
static const unsigned int CLINUX_IFF_VNET_HDR = 0x4000;
static const unsigned int CLINUX_TUN_F_CSUM = 0x01;
static const unsigned int CLINUX_TUN_F_TSO4 = 0x02;
static const unsigned int CLINUX_TUN_F_TSO6 = 0x04;
static const unsigned int CLINUX_TUN_F_TSO_ECN = 0x08;
static const unsigned int CLINUX_TUN_F_UFO = 0x10;
/// The tap ioctls a device makes after set-up (the seccomp filters name them); checked against
/// <linux/if_tun.h> in CLinux.c.
static const unsigned long CLINUX_TUNSETOFFLOAD = 0x400454d0;
static const unsigned long CLINUX_TUNSETVNETHDRSZ = 0x400454d8;

_Static_assert(sizeof(struct uffd_msg) == 32, "uffd_msg layout");
_Static_assert(sizeof(struct uffdio_copy) == 40, "uffdio_copy layout");
_Static_assert(sizeof(struct uffdio_zeropage) == 32, "uffdio_zeropage layout");
_Static_assert(sizeof(struct uffdio_register) == 32, "uffdio_register layout");

/* Descriptor passing over a connected Unix stream socket (SCM_RIGHTS). */
/* Sends `length` bytes (at least 1) with `count` descriptors (at most 250) attached; returns bytes sent or -1. */
long clinux_send_with_descriptors(int socket, const void *bytes, size_t length, const int *descriptors, int count);
/* Receives up to `length` bytes and up to `capacity` descriptors (close-on-exec) into `descriptors`,
   their number into `*count`; returns bytes received (0 at end of stream) or -1. Extra descriptors
   beyond `capacity` are closed and reported as -1 with errno EMSGSIZE. */
long clinux_receive_with_descriptors(int socket, void *bytes, size_t length, int *descriptors, int capacity, int *count);
/* A connected pair of Unix stream sockets, both close-on-exec. */
int clinux_stream_socketpair(int pair[2]);

/* Seccomp (see Sources/LinuxSystem/Seccomp). */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/audit.h>
static const unsigned int CLINUX_AUDIT_ARCH_X86_64 = AUDIT_ARCH_X86_64;
/* Installs `count` instructions as a seccomp filter on the calling thread only (no TSYNC: every
   thread role has its own); 0 or -1 with errno. */
int clinux_seccomp_install(const struct sock_filter *program, unsigned short count);
/* prctl(PR_GET_SECCOMP): 0 unfiltered, 2 under filters (kept across exec and inherited by
   threads and children). */
int clinux_seccomp_mode(void);
/* prctl(PR_SET_NO_NEW_PRIVS, 1): exec can no longer gain privileges (setuid bits, file capabilities). */
int clinux_set_no_new_privs(void);
/* Installs the SIGSYS handler that turns a filter's denial (SECCOMP_RET_TRAP, the role's number in
   its data) into one line on standard error naming the role and the call, then ends the process
   with status 159 (128 + SIGSYS). The name tables are copied; a signal handler cannot allocate or
   run Swift, so this is the one piece of logic in C. */
int clinux_seccomp_report_denials(const char *const *call_names, int call_count, const char *const *role_names, int role_count);
/* personality(0xffffffff), a harmless query no role's filter allows: the tests' trigger. */
int clinux_seccomp_forbidden_call(void);
/* ioctl(-1, KVM_CREATE_VM): an ioctl request no narrow role's filter allows (the kernel would
   refuse the descriptor; the filter stops it first). The tests' trigger for request filtering. */
int clinux_seccomp_forbidden_ioctl(void);

/* The jail (see Sources/LinuxSystem/Jail): everything between fork and exec, where only
   async-signal-safe system calls may run, so it is C. */
struct clinux_jail {
    const char *root;            /* the jail's root directory, absolute */
    const char *executable;      /* the program to exec, a path inside the root */
    char *const *arguments;      /* argv, NULL-terminated */
    char *const *environment;    /* envp, NULL-terminated */
    const int *cgroup_procs;     /* open cgroup.procs files the child joins before anything else */
    int cgroup_count;
    int network_namespace;       /* an open /run/netns file to enter, or -1 */
    int null_device;             /* /dev/null opened before the pivot, for a daemon's standard streams, or -1 */
    unsigned int uid, gid;
};
/* Steps of the child, reported with errno through the status pipe when one fails. */
enum clinux_jail_step {
    CLINUX_JAIL_CGROUP = 1, CLINUX_JAIL_NETNS, CLINUX_JAIL_PRIVATE_MOUNTS, CLINUX_JAIL_BIND_ROOT, CLINUX_JAIL_PIVOT,
    CLINUX_JAIL_PROC, CLINUX_JAIL_SESSION, CLINUX_JAIL_GROUPS, CLINUX_JAIL_BOUNDING_SET, CLINUX_JAIL_USER,
    CLINUX_JAIL_CAPABILITIES, CLINUX_JAIL_NO_NEW_PRIVS, CLINUX_JAIL_INIT, CLINUX_JAIL_EXEC,
};
/* Starts the jailed program in new mount and PID namespaces: the child joins the cgroups, enters
   the network namespace, pivots into the root (mounting a /proc of its own PID namespace), drops to
   uid/gid with no capabilities and no_new_privs, then stays as the namespace's init (reaping,
   passing signals on to every process in it, ending with the last one's status) while its own
   child execs the program. Returns the init's pid (as this namespace sees it) once the exec has
   happened, or -1 with errno and *failed_step set. */
int clinux_jail_spawn(const struct clinux_jail *jail, int *failed_step);
/* The jail tests' huge-page probe: maps `pages` anonymous 2 MiB huge pages, faults them in with
   MADV_POPULATE_WRITE (an error, never the SIGBUS a plain touch over a hugetlb cgroup limit would
   get) and unmaps them; 0, or the errno of the step that failed. */
int clinux_try_huge_pages(unsigned pages);
/* Installs handlers that pass SIGTERM, SIGINT, SIGHUP and SIGQUIT on to `pid` (the jailer waiting for its VMM). */
void clinux_forward_signals(int pid);
/* Adds "close every descriptor from `lowest` up" to a spawn's file actions (glibc 2.34), done in the
   child after the actions before it: nothing another thread opens meanwhile can leak into the child. */
int clinux_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest);
/* Makes every thread allocate from glibc's main malloc arena (mallopt M_ARENA_MAX 1); 0, or -1 if refused. */
int clinux_single_malloc_arena(void);
