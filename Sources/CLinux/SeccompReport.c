// The SIGSYS handler for seccomp denials: a signal handler must be async-signal-safe, which
// Swift cannot promise (it may allocate or take locks), so it is written here, in C, using
// only write(2) and exit_group(2).
#define _GNU_SOURCE
#include "CLinux.h"
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

int clinux_seccomp_install(const struct sock_filter *program, unsigned short count) {
    struct sock_fprog filter = {.len = count, .filter = (struct sock_filter *)program};
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &filter);
}
int clinux_seccomp_mode(void) { return prctl(PR_GET_SECCOMP, 0, 0, 0, 0); }
int clinux_set_no_new_privs(void) { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); }

enum { report_calls = 512, report_roles = 16 };
static char *call_names[report_calls];
static char *role_names[report_roles];
static int reported;

static size_t append(char *line, size_t used, size_t capacity, const char *text) {
    while (*text && used + 1 < capacity) line[used++] = *text++;
    return used;
}

static size_t append_number(char *line, size_t used, size_t capacity, long value) {
    char digits[24];
    size_t count = 0;
    unsigned long magnitude = value < 0 ? (unsigned long)-value : (unsigned long)value;
    do { digits[count++] = (char)('0' + magnitude % 10); magnitude /= 10; } while (magnitude && count < sizeof digits);
    if (value < 0 && used + 1 < capacity) line[used++] = '-';
    while (count && used + 1 < capacity) line[used++] = digits[--count];
    return used;
}

static size_t append_hex(char *line, size_t used, size_t capacity, unsigned long value) {
    char digits[16];
    size_t count = 0;
    do { digits[count++] = "0123456789abcdef"[value & 15]; value >>= 4; } while (value && count < sizeof digits);
    used = append(line, used, capacity, "0x");
    while (count && used + 1 < capacity) line[used++] = digits[--count];
    return used;
}

static void report_denial(int signal, siginfo_t *info, void *context) {
    (void)signal;
    char line[512];
    size_t used = 0;
    // Threads denied at once (a role's two threads) print one line: the first does, the rest wait.
    // (clock_nanosleep is in every role's list; the first thread's exit_group ends them.)
    if (__atomic_exchange_n(&reported, 1, __ATOMIC_ACQ_REL)) {
        struct timespec second = {1, 0};
        for (;;) nanosleep(&second, NULL);
    }
    int role = info->si_errno;  // SECCOMP_RET_DATA of the filter that denied the call
    int call = info->si_syscall;
    used = append(line, used, sizeof line, "engram: seccomp: the ");
    used = append(line, used, sizeof line, role >= 0 && role < report_roles && role_names[role] ? role_names[role] : "unknown");
    used = append(line, used, sizeof line, " thread called ");
    used = append(line, used, sizeof line, call >= 0 && call < report_calls && call_names[call] ? call_names[call] : "system call");
    used = append(line, used, sizeof line, " (");
    used = append_number(line, used, sizeof line, call);
    used = append(line, used, sizeof line, ")");
    if (call == SYS_ioctl && context) {
        // The kernel takes an ioctl's request as 32 bits, and so do the filters.
        const ucontext_t *registers = context;
        used = append(line, used, sizeof line, " with request ");
        used = append_hex(line, used, sizeof line, (unsigned long)registers->uc_mcontext.gregs[REG_RSI] & 0xffffffffUL);
    }
    used = append(line, used, sizeof line, ", which its filter forbids; the VMM stops here (files and guest memory keep what was written; --no-seccomp turns the filters off for debugging)\n");
    ssize_t written = write(STDERR_FILENO, line, used);
    (void)written;
    syscall(SYS_exit_group, 128 + SIGSYS);
}

int clinux_seccomp_report_denials(const char *const *calls, int call_count, const char *const *roles, int role_count) {
    for (int index = 0; index < call_count && index < report_calls; index++) {
        if (calls[index] && !call_names[index]) call_names[index] = strdup(calls[index]);
    }
    for (int index = 0; index < role_count && index < report_roles; index++) {
        if (roles[index] && !role_names[index]) role_names[index] = strdup(roles[index]);
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = report_denial;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    return sigaction(SIGSYS, &action, NULL);
}

int clinux_seccomp_forbidden_call(void) { return personality(0xffffffff); }
int clinux_seccomp_forbidden_ioctl(void) { return ioctl(-1, KVM_CREATE_VM, 0); }
