#!/usr/bin/env python3
"""Time from process start to the test kernel's READY line: Engram beside QEMU, in one run.

Both VMMs boot the same kernel, command line, memory and vCPU count; runs alternate so
machine noise hits both alike. Reports medians, their ratio, and Engram's resident memory
beyond guest RAM (RssAnon + RssFile; guest RAM is the memfd counted in RssShmem).
Writes docs/results/boot.md and docs/results/boot.json.
"""
import argparse, json, os, platform, select, statistics, subprocess, sys, time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL = os.path.join(ROOT, "guest/build/engram-test-kernel.elf")


def time_to_ready(command, measure_memory=False, timeout=60.0):
    """Starts `command`, returns (seconds until a stdout line contains READY, memory in KiB or None)."""
    start = time.monotonic()
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    buffer = b""
    try:
        while b"READY" not in buffer:
            remaining = timeout - (time.monotonic() - start)
            if remaining <= 0 or process.poll() is not None:
                raise RuntimeError(f"no READY line from {command[0]}: {buffer[-300:]!r}")
            ready, _, _ = select.select([process.stdout], [], [], remaining)
            if ready:
                buffer += os.read(process.stdout.fileno(), 65536)
        elapsed = time.monotonic() - start
        memory = vmm_memory_kib(process.pid) if measure_memory else None
        return elapsed, memory
    finally:
        process.kill()
        process.wait()


def vmm_memory_kib(pid):
    """Resident memory of the VMM itself: anonymous + file-backed, not the shared guest RAM."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile", "RssShmem", "VmRSS"):
                fields[key] = int(value.split()[0])
    return fields


def measure(args, cpus):
    """One configuration: alternating runs of Engram and QEMU with `cpus` vCPUs."""
    cmdline = f"console=ttyS0 cpus={cpus}"
    engram = [args.engram, "run", "--kernel", KERNEL, "--memory", args.memory, "--cpus", str(cpus), "--cmdline", cmdline]
    qemu = ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-m", args.memory, "-smp", str(cpus),
            "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-kernel", KERNEL, "-append", cmdline]
    time_to_ready(engram)  # warm the page cache for both binaries and the kernel
    time_to_ready(qemu)
    engram_times, qemu_times, memories = [], [], []
    for _ in range(args.runs):
        seconds, memory = time_to_ready(engram, measure_memory=True)
        engram_times.append(seconds)
        memories.append(memory)
        qemu_times.append(time_to_ready(qemu)[0])
    engram_ms = statistics.median(engram_times) * 1000
    qemu_ms = statistics.median(qemu_times) * 1000
    overhead_kib = statistics.median(m["RssAnon"] + m["RssFile"] for m in memories)
    return {
        "cpus": cpus, "cmdline": cmdline,
        "engram_ms_median": round(engram_ms, 1), "qemu_ms_median": round(qemu_ms, 1),
        "ratio_engram_over_qemu": round(engram_ms / qemu_ms, 3),
        "engram_ms_all": [round(t * 1000, 1) for t in engram_times],
        "qemu_ms_all": [round(t * 1000, 1) for t in qemu_times],
        "engram_vmm_rss_mib_median": round(overhead_kib / 1024, 1),
        "engram_rss_detail_kib": memories[len(memories) // 2],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--memory", default="256M")
    parser.add_argument("--cpus", default="1,2", help="comma-separated vCPU counts")
    parser.add_argument("--engram", default=os.path.join(ROOT, ".build/release/engram"))
    args = parser.parse_args()

    configurations = [measure(args, int(cpus)) for cpus in args.cpus.split(",")]
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": f"{platform.node()} ({os.cpu_count()} CPUs, kernel {platform.release()})",
        "runs": args.runs, "memory": args.memory, "configurations": configurations,
    }
    with open(os.path.join(ROOT, "docs/results/boot.json"), "w") as out:
        json.dump(result, out, indent=2)
        out.write("\n")
    rows = "\n".join(
        f"| {c['cpus']} | {c['engram_ms_median']:.1f} ms | {c['qemu_ms_median']:.1f} ms | **{c['ratio_engram_over_qemu']}** | "
        f"{c['engram_vmm_rss_mib_median']} MiB |" for c in configurations)
    runs = "\n".join(
        f"- {c['cpus']} vCPU: Engram {', '.join(map(str, c['engram_ms_all']))}; QEMU {', '.join(map(str, c['qemu_ms_all']))}"
        for c in configurations)
    with open(os.path.join(ROOT, "docs/results/boot.md"), "w") as out:
        out.write(f"""# Boot to READY: Engram vs QEMU

Written by `bench/boot_time.py` on {result['date']}, {result['host']}.
Test kernel, same command line (`console=ttyS0 cpus=N`), {args.memory} and vCPU count for both;
QEMU 7.2 `-M microvm -accel kvm`; Engram release build; {args.runs} alternating runs each, medians.
Targets: Engram ≤ 0.8 × QEMU; Engram's resident memory beyond guest RAM ≤ 20 MiB
(RssAnon + RssFile at READY; guest RAM is the memfd, counted in RssShmem).

| vCPUs | Engram | QEMU | ratio Engram / QEMU | Engram VMM memory |
|---|---|---|---|---|
{rows}

All runs (ms):
{runs}
""")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
