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
    start = time.monotonic()
    result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    elapsed = (time.monotonic() - start) * 1000
    if b"POWEROFF" not in result.stdout:
        raise RuntimeError(f"{' '.join(command[:3])}… did not power off ({result.returncode}): {result.stderr.decode()[-300:]}")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engram", default=os.path.join(ROOT, ".build/release/engram"))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--output", default=os.path.join(ROOT, "docs/results/jail.md"))
    args = parser.parse_args()
    vm = ["run", "--kernel", KERNEL, "--memory", "128M", "--cmdline", "console=ttyS0 -- poweroff"]
    samples = {"plain": [], "jail": [], "jail + cgroup": []}
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
    plain = statistics.median(samples["plain"])
    rows = [f"| {kind} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} | {statistics.median(values) - plain:+.1f} |"
            for kind, values in samples.items()]
    libraries = subprocess.run(["/lib64/ld-linux-x86-64.so.2", "--list", args.engram], capture_output=True, text=True).stdout.count("=>")
    text = "\n".join([
        "# The jail's cost at start (bench/jail.py)",
        "",
        f"{datetime.now(timezone.utc):%Y-%m-%d}, this host (2 cores, PVM). `{os.path.relpath(args.engram, ROOT)}` ({libraries} shared "
        f"libraries beside it) boots the test kernel with 128 MiB to READY and powers off; wall time of the whole process, spawn "
        f"to exit, {args.rounds} rounds in alternating order (the first run, warming the page cache, not counted). The jail makes "
        "a fresh root each time: the binary and its libraries hard-linked in, the kernel linked, five device nodes, new mount and "
        "PID namespaces, pivot_root, a /proc, and uid/gid 48151 with no capabilities; the cgroup row also makes and joins a pids "
        "group (cgroup v1 here).",
        "",
        "| start | median ms | min | max | over plain (median) |",
        "|---|---:|---:|---:|---:|",
        *rows,
        "",
        "- Firecracker's jailer does the same work before exec (its published figure is not comparable: it copies one static "
        "binary). Hosts with a statically linked engram link one file instead of the libraries.",
        "",
    ])
    with open(args.output, "w") as output:
        output.write(text)
    print(text)


if __name__ == "__main__":
    main()
