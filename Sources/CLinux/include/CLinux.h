// The C shim: kernel-header constants and variadic/hidden calls Swift cannot import.
// No logic lives here: every function is a one-line wrapper.
#pragma once
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <termios.h>
#include <unistd.h>

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
static const unsigned long CLINUX_KVM_GET_PIT2 = KVM_GET_PIT2;
static const unsigned long CLINUX_KVM_SET_PIT2 = KVM_SET_PIT2;

/// memfd_create(2), hidden behind _GNU_SOURCE in Swift's Glibc module.
static inline int clinux_memfd_create(const char *name, unsigned int flags) { return memfd_create(name, flags); }
/// ioctl(2) with a pointer argument.
static inline int clinux_ioctl_ptr(int fd, unsigned long request, void *arg) { return ioctl(fd, request, arg); }
/// ioctl(2) with an integer argument.
static inline int clinux_ioctl_int(int fd, unsigned long request, unsigned long arg) { return ioctl(fd, request, arg); }
/// mkostemp(3), a GNU extension.
static inline int clinux_mkostemp(char *template_, int flags) { return mkostemp(template_, flags); }
/// statfs(2)'s block size: the huge page size on a hugetlbfs mount; -1 with errno on failure.
static inline long clinux_statfs_block_size(const char *path) { struct statfs s; return statfs(path, &s) == 0 ? (long)s.f_bsize : -1; }
/// tgkill(2): sends a signal to one thread of this process (kicks a vCPU out of KVM_RUN).
static inline int clinux_tgkill(int tgid, int tid, int sig) { return (int)syscall(SYS_tgkill, tgid, tid, sig); }
/// pthread_setname_np(3), a GNU extension: names the calling thread (15 bytes at most).
static inline int clinux_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }
/// gettid(2).
static inline int clinux_gettid(void) { return (int)syscall(SYS_gettid); }

_Static_assert(KVM_API_VERSION == 12, "Engram speaks KVM API version 12");
_Static_assert(sizeof(struct kvm_regs) == 144, "kvm_regs layout");
_Static_assert(sizeof(struct kvm_sregs) == 312, "kvm_sregs layout");
