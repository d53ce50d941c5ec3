// One-line wrappers for calls Swift cannot import (see include/CLinux.h).
#define _GNU_SOURCE
#include "CLinux.h"
#include <fcntl.h>
#include <malloc.h>
#include <spawn.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <errno.h>
#include <string.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <net/if.h>
#include <linux/if_tun.h>
_Static_assert(TUNSETOFFLOAD == 0x400454d0 && TUNSETVNETHDRSZ == 0x400454d8, "tap ioctl requests");
#include <unistd.h>

int clinux_memfd_create(const char *name, unsigned int flags) { return memfd_create(name, flags); }
int clinux_ioctl_ptr(int fd, unsigned long request, void *arg) { return ioctl(fd, request, arg); }
int clinux_ioctl_int(int fd, unsigned long request, unsigned long arg) { return ioctl(fd, request, arg); }
int clinux_mkostemp(char *template_, int flags) { return mkostemp(template_, flags); }
int clinux_unix_socket_bind(const char *path) {
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(address.sun_path)) { errno = ENAMETOOLONG; return -1; }
    strcpy(address.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    if (bind(fd, (struct sockaddr *)&address, sizeof(address)) != 0) { int saved = errno; close(fd); errno = saved; return -1; }
    return fd;
}
int clinux_unix_socket_connect(const char *path) {
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(address.sun_path)) { errno = ENAMETOOLONG; return -1; }
    strcpy(address.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int result;
    do { result = connect(fd, (struct sockaddr *)&address, sizeof(address)); } while (result != 0 && errno == EINTR);
    if (result != 0) { int saved = errno; close(fd); errno = saved; return -1; }
    return fd;
}
int clinux_pipe_cloexec(int ends[2]) { return pipe2(ends, O_CLOEXEC); }
int clinux_accept_cloexec(int fd, void *address, unsigned int *length) {
    return accept4(fd, (struct sockaddr *)address, (socklen_t *)length, SOCK_CLOEXEC);
}
int clinux_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }
int clinux_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event event = {.events = events, .data.u64 = data};
    return epoll_ctl(epfd, op, fd, &event);
}
int clinux_epoll_wait(int epfd, struct clinux_epoll_event *events, int capacity, int timeout_ms) {
    struct epoll_event ready[64];
    if (capacity > 64) capacity = 64;
    int count = epoll_wait(epfd, ready, capacity, timeout_ms);
    for (int i = 0; i < count; i++) { events[i].events = ready[i].events; events[i].data = ready[i].data.u64; }
    return count;
}
_Static_assert(EPOLL_CTL_ADD == 1 && EPOLL_CTL_DEL == 2 && EPOLL_CTL_MOD == 3, "epoll_ctl operations");
_Static_assert(EPOLLIN == 0x001 && EPOLLOUT == 0x004 && EPOLLERR == 0x008 && EPOLLHUP == 0x010, "epoll event bits");
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
int clinux_close_range_cloexec(unsigned int first) { return (int)syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC); }
// Runs on its own small stack in the parent's address space: raw system calls only.
// At the lowest priority: the teardown it is there for (its exit) yields to the new image's threads.
static int teardown_holder(void *unused) {
    (void)unused;
    syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    syscall(SYS_setpriority, PRIO_PROCESS, 0, 19);
    struct timespec wait = {30, 0};
    syscall(SYS_nanosleep, &wait, NULL);
    syscall(SYS_exit, 0);
    return 0;
}
int clinux_spawn_teardown_holder(void) {
    const size_t size = 64 * 1024;
    char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return -1;
    return clone(teardown_holder, stack + size, CLONE_VM | CLONE_FILES | SIGCHLD, NULL);
}
long clinux_statfs_block_size(const char *path) { struct statfs s; return statfs(path, &s) == 0 ? (long)s.f_bsize : -1; }
long clinux_fstatfs_block_size(int fd) { struct statfs s; return fstatfs(fd, &s) == 0 ? (long)s.f_bsize : -1; }
int clinux_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }
int clinux_tgkill(int tgid, int tid, int sig) { return (int)syscall(SYS_tgkill, tgid, tid, sig); }
int clinux_gettid(void) { return (int)syscall(SYS_gettid); }

// userfaultfd (see the userfaultfd block of include/CLinux.h).
int clinux_userfaultfd(int flags) { return (int)syscall(SYS_userfaultfd, flags); }
int clinux_eventfd(unsigned int initial, int flags) { return eventfd(initial, flags); }
_Static_assert(EFD_CLOEXEC == O_CLOEXEC && EFD_NONBLOCK == O_NONBLOCK, "eventfd flags are the O_ flags");

const void *clinux_memmem(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length) {
    return memmem(haystack, haystack_length, needle, needle_length);
}
int clinux_punch_hole(int fd, int64_t offset, int64_t length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length);
}
long clinux_copy_file_range(int in, int64_t *in_offset, int out, int64_t *out_offset, size_t length) {
    return (long)copy_file_range(in, (off_t *)in_offset, out, (off_t *)out_offset, length, 0);
}
long clinux_getrandom(void *buffer, size_t length) { return (long)syscall(SYS_getrandom, buffer, length, 0); }

int clinux_tap_attach(int fd, const char *name, char *actual) {
    struct ifreq request;
    memset(&request, 0, sizeof request);
    if (strlen(name) >= IFNAMSIZ) { errno = ENAMETOOLONG; return -1; }
    strcpy(request.ifr_name, name);
    request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (ioctl(fd, TUNSETIFF, &request) != 0) return -1;
    memcpy(actual, request.ifr_name, IFNAMSIZ);
    return 0;
}
int clinux_tap_query(int fd, char *actual, unsigned int *flags) {
    struct ifreq request;
    memset(&request, 0, sizeof request);
    if (ioctl(fd, TUNGETIFF, &request) != 0) return -1;
    memcpy(actual, request.ifr_name, IFNAMSIZ);
    *flags = (unsigned short)request.ifr_flags;
    return 0;
}
int clinux_tap_set_header_size(int fd, int size) { return ioctl(fd, TUNSETVNETHDRSZ, &size); }
int clinux_tap_set_offload(int fd, unsigned int offloads) { return ioctl(fd, TUNSETOFFLOAD, (unsigned long)offloads); }

long clinux_send_with_descriptors(int socket, const void *bytes, size_t length, const int *descriptors, int count) {
    if (count < 0 || count > 250 || length == 0) { errno = EINVAL; return -1; }
    struct iovec vector = { .iov_base = (void *)bytes, .iov_len = length };
    union { char buffer[CMSG_SPACE(250 * sizeof(int))]; struct cmsghdr align; } control;
    struct msghdr message = { .msg_iov = &vector, .msg_iovlen = 1 };
    if (count > 0) {
        message.msg_control = control.buffer;
        message.msg_controllen = CMSG_SPACE((size_t)count * sizeof(int));
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN((size_t)count * sizeof(int));
        memcpy(CMSG_DATA(header), descriptors, (size_t)count * sizeof(int));
    }
    long sent;
    do { sent = sendmsg(socket, &message, MSG_NOSIGNAL); } while (sent < 0 && errno == EINTR);
    return sent;
}

long clinux_receive_with_descriptors(int socket, void *bytes, size_t length, int *descriptors, int capacity, int *count) {
    struct iovec vector = { .iov_base = bytes, .iov_len = length };
    union { char buffer[CMSG_SPACE(250 * sizeof(int))]; struct cmsghdr align; } control;
    struct msghdr message = { .msg_iov = &vector, .msg_iovlen = 1, .msg_control = control.buffer, .msg_controllen = sizeof control.buffer };
    long received;
    do { received = recvmsg(socket, &message, MSG_CMSG_CLOEXEC); } while (received < 0 && errno == EINTR);
    *count = 0;
    if (received < 0) return -1;
    int overflow = (message.msg_flags & MSG_CTRUNC) != 0;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        int n = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *passed = (int *)CMSG_DATA(header);
        for (int i = 0; i < n; i++) {
            if (*count < capacity) descriptors[(*count)++] = passed[i];
            else { close(passed[i]); overflow = 1; }
        }
    }
    if (overflow) {
        for (int i = 0; i < *count; i++) close(descriptors[i]);
        *count = 0;
        errno = EMSGSIZE;
        return -1;
    }
    return received;
}

int clinux_stream_socketpair(int pair[2]) { return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair); }

extern char **environ;

void clinux_scrub_environment(const char *name) {
    size_t length = strlen(name);
    for (char **entry = environ; entry && *entry; entry++) {
        if (strncmp(*entry, name, length) == 0 && (*entry)[length] == '=') {
            char *value = *entry + length + 1;
            explicit_bzero(value, strlen(value));
        }
    }
    unsetenv(name);
}

int clinux_single_malloc_arena(void) { return mallopt(M_ARENA_MAX, 1) == 1 ? 0 : -1; }

int clinux_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowest);
}
