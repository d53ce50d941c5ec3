// The jail's child: between clone and exec only async-signal-safe system calls may run (the
// Swift runtime's other threads were not copied and may hold its locks), so this is C. Each step
// that fails writes {step, errno} to a close-on-exec pipe and ends the child; a successful exec
// closes the pipe, which the parent reads as success.
#define _GNU_SOURCE
#include "CLinux.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct jail_child { const struct clinux_jail *jail; int status; };

static int fail(int status, int step) {
    int report[2] = {step, errno};
    ssize_t written = write(status, report, sizeof report);
    (void)written;
    _exit(127);
}

// The jail's init: holds nothing of the VMM's (every descriptor but the standard streams
// closed), passes the forwarded signals to every process of the namespace, reaps them all,
// and ends with the status of the last to end (128 + the signal for one killed), once none is left.
static void pass_on(int signal_number) {
    // kill(-1) from a PID namespace's init reaches every process in it but the init.
    kill(-1, signal_number);
}

static int jail_init(int status) {
    close(status);
    syscall(SYS_close_range, 3, ~0U, 0);
    struct sigaction action = {0};
    action.sa_handler = pass_on;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    const int passed[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
    for (size_t index = 0; index < sizeof passed / sizeof passed[0]; index++) sigaction(passed[index], &action, NULL);
    int last = 0;
    while (1) {
        int ended;
        pid_t pid = waitpid(-1, &ended, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            _exit(last);  // ECHILD: nobody left
        }
        last = WIFEXITED(ended) ? WEXITSTATUS(ended) : 128 + WTERMSIG(ended);
    }
}

static int jail_child(void *argument) {
    const struct jail_child *child = argument;
    const struct clinux_jail *jail = child->jail;
    int status = child->status;
    // The parent blocked the signals it forwards while cloning; the program starts with none blocked.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int index = 0; index < jail->cgroup_count; index++) {
        if (write(jail->cgroup_procs[index], "0\n", 2) != 2) fail(status, CLINUX_JAIL_CGROUP);
    }
    if (jail->network_namespace >= 0 && setns(jail->network_namespace, CLONE_NEWNET) != 0) fail(status, CLINUX_JAIL_NETNS);
    // Mounts made here must not propagate back to the host's namespace.
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail(status, CLINUX_JAIL_PRIVATE_MOUNTS);
    // pivot_root needs the new root to be a mount point.
    if (mount(jail->root, jail->root, NULL, MS_BIND | MS_REC, NULL) != 0) fail(status, CLINUX_JAIL_BIND_ROOT);
    if (chdir(jail->root) != 0) fail(status, CLINUX_JAIL_PIVOT);
    // Pivot onto the current directory, then detach the old root stacked beneath it.
    if (syscall(SYS_pivot_root, ".", ".") != 0) fail(status, CLINUX_JAIL_PIVOT);
    if (umount2(".", MNT_DETACH) != 0) fail(status, CLINUX_JAIL_PIVOT);
    if (chdir("/") != 0) fail(status, CLINUX_JAIL_PIVOT);
    // A /proc of the new PID namespace: /proc/self/exe and /proc/self/fd serve live update and spawning.
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) fail(status, CLINUX_JAIL_PROC);
    if (jail->null_device >= 0) {
        if (setsid() < 0) fail(status, CLINUX_JAIL_SESSION);
        for (int stream = 0; stream < 3; stream++) {
            if (dup2(jail->null_device, stream) < 0) fail(status, CLINUX_JAIL_SESSION);
        }
    }
    gid_t groups[1] = {jail->gid};
    if (setgroups(1, groups) != 0 || setresgid(jail->gid, jail->gid, jail->gid) != 0) fail(status, CLINUX_JAIL_GROUPS);
    // Empty the bounding set while CAP_SETPCAP is still held; EINVAL marks the end of the kernel's capabilities.
    for (int capability = 0; capability < 64; capability++) {
        if (prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0 && errno != EINVAL) fail(status, CLINUX_JAIL_BOUNDING_SET);
    }
    if (setresuid(jail->uid, jail->uid, jail->uid) != 0) fail(status, CLINUX_JAIL_USER);
    // A VMM the jailer waits for ends with it (set after setresuid, which clears the setting).
    if (jail->null_device < 0 && prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) fail(status, CLINUX_JAIL_USER);
    // Leaving uid 0 cleared the permitted and effective sets; clear the inheritable and ambient ones too.
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2] = {{0, 0, 0}, {0, 0, 0}};
    if (syscall(SYS_capset, &header, data) != 0) fail(status, CLINUX_JAIL_CAPABILITIES);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) fail(status, CLINUX_JAIL_CAPABILITIES);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(status, CLINUX_JAIL_NO_NEW_PRIVS);
    // This process is the PID namespace's init, whose end ends every process in it. The VMM runs
    // as its child, so a VMM that hands its guest to a new process (a transfer-mode live update)
    // or forks children can end while they run on.
    pid_t vmm = fork();
    if (vmm < 0) fail(status, CLINUX_JAIL_INIT);
    if (vmm == 0) {
        execve(jail->executable, jail->arguments, jail->environment);
        return fail(status, CLINUX_JAIL_EXEC);
    }
    return jail_init(status);
}

static volatile sig_atomic_t forward_to;
static void forward(int signal_number) { if (forward_to > 0) kill(forward_to, signal_number); }
static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};

int clinux_jail_spawn(const struct clinux_jail *jail, int *failed_step) {
    *failed_step = 0;
    int status[2];
    if (pipe2(status, O_CLOEXEC) != 0) return -1;
    enum { stack_size = 256 * 1024 };
    char *stack = malloc(stack_size);
    if (stack == NULL) { close(status[0]); close(status[1]); errno = ENOMEM; return -1; }
    // Signals meant for the VMM that arrive before the parent forwards them wait, blocked, until then.
    sigset_t blocked, previous;
    sigemptyset(&blocked);
    for (size_t index = 0; index < sizeof forwarded / sizeof forwarded[0]; index++) sigaddset(&blocked, forwarded[index]);
    sigprocmask(SIG_BLOCK, &blocked, &previous);
    struct jail_child child = {jail, status[1]};
    int pid = clone(jail_child, stack + stack_size, CLONE_NEWNS | CLONE_NEWPID | SIGCHLD, &child);
    int clone_errno = errno;
    free(stack);
    close(status[1]);
    if (pid < 0) {
        sigprocmask(SIG_SETMASK, &previous, NULL);
        close(status[0]);
        errno = clone_errno;
        return -1;
    }
    int report[2] = {0, 0};
    ssize_t got;
    do { got = read(status[0], report, sizeof report); } while (got < 0 && errno == EINTR);
    close(status[0]);
    if (got == (ssize_t)sizeof report) {
        int ignored;
        while (waitpid(pid, &ignored, 0) < 0 && errno == EINTR) {}
        sigprocmask(SIG_SETMASK, &previous, NULL);
        *failed_step = report[0];
        errno = report[1];
        return -1;
    }
    clinux_forward_signals(pid);
    sigprocmask(SIG_SETMASK, &previous, NULL);
    return pid;
}

void clinux_forward_signals(int pid) {
    forward_to = pid;
    struct sigaction action = {0};
    action.sa_handler = forward;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    for (size_t index = 0; index < sizeof forwarded / sizeof forwarded[0]; index++) sigaction(forwarded[index], &action, NULL);
}

int clinux_try_huge_pages(unsigned pages) {
    size_t length = (size_t)pages << 21;
    void *mapped = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    if (mapped == MAP_FAILED) return errno;
    int result = madvise(mapped, length, 23 /* MADV_POPULATE_WRITE */) == 0 ? 0 : errno;
    munmap(mapped, length);
    return result;
}
