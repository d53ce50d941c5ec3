#!/usr/bin/env python3
"""What `engram jail` costs at start: the same engram binary booting the test kernel to its
READY line and powering off (`-- poweroff` on its command line), run plainly, in a jail (a fresh
root with the binary and its libraries hard-linked in, device nodes, namespaces, an unprivileged
user), and in a jail with a cgroup limit. Rounds alternate the order; each figure is the whole
process's wall time, spawn to exit; medians and the jail's extra milliseconds go to
docs/results/jail.md.

    bench/jail.py [--engram PATH] [--rounds N] [--output FILE]
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL = os.path.join(ROOT, "guest/build/engram-test-kernel.elf")
USER = "48151"


def timed(command):
    """(ms from spawn to the guest's READY line, ms from spawn to the process's exit)."""
    start = time.monotonic()
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ready = None
    output = b""
    for line in process.stdout:
        output += line
        if ready is None and b"READY" in line: ready = (time.monotonic() - start) * 1000
    errors = process.stderr.read()
    process.wait(120)
    total = (time.monotonic() - start) * 1000
    if ready is None or b"POWEROFF" not in output:
        raise RuntimeError(f"{' '.join(command[:3])}… did not boot and power off ({process.returncode}): {errors.decode()[-300:]}")
    return ready, total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engram", default=os.path.join(ROOT, ".build/release/engram"))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--output", default=os.path.join(ROOT, "docs/results/jail.md"))
    args = parser.parse_args()
    vm = ["run", "--kernel", KERNEL, "--memory", "128M", "--cmdline", "console=ttyS0 -- poweroff"]
    samples = {"plain": [], "jail": [], "jail + cgroup": []}  # (ready, total) pairs
    with tempfile.TemporaryDirectory(prefix="engram-jail-bench-") as base:
        def jail(name, extra):
            return [args.engram, "jail", "--id", name, "--uid", USER, "--gid", USER, "--chroot-base", base] + extra + ["--"] + vm
        kinds = {
            "plain": lambda n: [args.engram] + vm,
            "jail": lambda n: jail(f"j{n}", []),
            "jail + cgroup": lambda n: jail(f"c{n}", ["--cgroup", "pids.max=256"]),
        }
        timed(kinds["plain"](0))  # warm the page cache
        for round_number in range(args.rounds):
            order = list(kinds) if round_number % 2 == 0 else list(reversed(kinds))
            for kind in order:
                samples[kind].append(timed(kinds[kind](round_number)))
            for entry in os.listdir(base): shutil.rmtree(os.path.join(base, entry))
            print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    def column(kind, index): return [sample[index] for sample in samples[kind]]
    plain_ready, plain_total = (statistics.median(column("plain", i)) for i in (0, 1))
    rows = []
    for kind in samples:
        ready, total = column(kind, 0), column(kind, 1)
        rows.append(f"| {kind} | {statistics.median(ready):.1f} ({min(ready):.1f}–{max(ready):.1f}) | {statistics.median(ready) - plain_ready:+.1f} "
                    f"| {statistics.median(total):.1f} ({min(total):.1f}–{max(total):.1f}) | {statistics.median(total) - plain_total:+.1f} |")
    libraries = subprocess.run(["/lib64/ld-linux-x86-64.so.2", "--list", args.engram], capture_output=True, text=True).stdout.count("=>")
    text = "\n".join([
        "# The jail's cost at start (bench/jail.py)",
        "",
        f"{datetime.now(timezone.utc):%Y-%m-%d}, this host (2 cores, PVM). The release engram ({libraries} shared "
        f"libraries beside it) boots the test kernel with 128 MiB to READY and powers off; times from spawn to the READY line "
        f"and to the process's exit (the jailer's exit includes removing the cgroup), {args.rounds} rounds in alternating order (the first run, warming the page cache, not counted). The jail makes "
        "a fresh root each time: the binary and its libraries hard-linked in, the kernel linked, five device nodes, new mount and "
        "PID namespaces, pivot_root, a /proc, and uid/gid 48151 with no capabilities; the cgroup row also makes and joins a pids "
        "group (cgroup v1 here).",
        "",
        "| start | spawn → READY, median ms (min–max) | over plain | spawn → exit, median ms (min–max) | over plain |",
        "|---|---:|---:|---:|---:|",
        *rows,
        "",
        "- The jail's own work is a second process start (the jailer is engram too), the checks, a root of hard links, the "
        "namespaces and the drop of rights. A cgroup adds making the group and moving the child into it before READY, and "
        "removing the group after exit (cgroup v1 here; on v2, CLONE_INTO_CGROUP could start the child in its group, which "
        "this host cannot test).",
        "- Firecracker's jailer does the same work before exec; it copies one static binary where this one links the binary "
        "and its libraries.",
        "",
    ])
    with open(args.output, "w") as output:
        output.write(text)
    print(text)


if __name__ == "__main__":
    main()
