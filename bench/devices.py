#!/usr/bin/env python3
"""virtio-blk and virtio-rng: Engram beside QEMU microvm, in one run, with the same test-kernel driver.

Both VMMs boot the test kernel (256 MiB, 1 vCPU, `cpus=1`) with one virtio-blk disk and one
virtio-rng device and stay up for the whole run. Each disk is a fresh raw image of --image-mib MiB
in --tmpdir, written in full with random bytes (not sparse) and fsynced, so reads hit real data;
nothing is dropped from the page cache, so the images are in the host page cache throughout.

Workloads, each a `blk <dev> bench ...` console command timed on the host from sending the line to
receiving its `BLK BENCH` line (the guest only counts 100 Hz ticks):
- 4 KiB random read at queue depth 1 and 32 (IOPS);
- 1 MiB sequential read and sequential write at queue depth 1 and 32 (MB/s, 10^6 bytes/s);
each in the driver's interrupt mode (the default) and in poll mode (`virtio opt <dev> poll 1`).
Then `rng <dev> 1048576` in both modes (Engram's limiter set to 1 GiB/s, bursts of 1 MiB, so it is
not what is measured).

An unrecorded calibration pass per mode sizes total_requests so each run takes about --seconds
(the geometric mean of the two VMMs' rates, the same count for both). Then --rounds rounds: every
workload runs on both VMMs back to back, the order alternating per round. Per run the bench also
reads each VMM thread's CPU time (/proc/PID/task/TID/schedstat), grouped as vCPU, I/O (Engram's
virtio-io thread; QEMU's main loop and its thread-pool workers) and other.

vsock is not measured yet (no vsock harness here yet; Engram's device was being written); its rows say so.
Writes docs/results/devices.md and docs/results/devices.json.
"""
import argparse, json, math, os, platform, re, shutil, signal, statistics, subprocess, sys, tempfile, time
from datetime import datetime, timezone

from benchlib import PROCESSES, Child, kill_all, summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL = os.path.join(ROOT, "guest/build/engram-test-kernel.elf")
MIB = 1 << 20
READY = re.compile(rb"ENGRAM-TEST-KERNEL READY[^\r\n]*\r?\n")
RNG_OPTION = "rate=1073741824,burst=1048576"
MODES = ("interrupt", "poll")
# (name, bench mode, block bytes, queue depth, calibration requests, quick calibration requests)
WORKLOADS = (
    ("randread-4k-qd1", "randread", 4096, 1, 600, 300),
    ("randread-4k-qd32", "randread", 4096, 32, 6000, 3000),
    ("seqread-1m-qd1", "seqread", MIB, 1, 150, 60),
    ("seqread-1m-qd32", "seqread", MIB, 32, 300, 120),
    ("seqwrite-1m-qd1", "seqwrite", MIB, 1, 150, 60),
    ("seqwrite-1m-qd32", "seqwrite", MIB, 32, 300, 120),
)
RNG_BYTES = 1 << 20
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DEFAULT_STRACE = ",".join(f"{mode}:{w[0]}" for mode in MODES for w in WORKLOADS if w[3] == 32 or mode == "poll")


def field(line, name):
    match = re.search(rf"\b{name}=(\S+)", line)
    return match.group(1) if match else None


class VM:
    """One VMM running the test kernel, driven over its console."""

    def __init__(self, name, command):
        self.name = name
        self.child = Child(command, name=name)
        self.devices = {}

    def boot(self):
        self.child.wait_for(READY, 120, "READY")

    def command(self, line, expect, timeout=120):
        """Types `line`; (host seconds from sending to the end of the answer line, the answer line)."""
        pattern = re.compile(rb"(?:^|\n)((?:" + re.escape(expect.encode()) + rb"|ERROR)[^\r\n]*)\r?\n")
        sent = time.monotonic()
        self.child.type_line(line)
        arrived, match = self.child.wait_for(pattern, timeout, f"{expect!r} after {line!r}")
        answer = match.group(1).decode(errors="replace")
        if answer.startswith("ERROR"):
            raise RuntimeError(f"{self.name}: {line!r} answered {answer!r}")
        return arrived - sent, answer

    def discover(self):
        start = len(self.child.out)
        self.command("virtio", "VIRTIO devices=")
        listing = self.child.out[start:].decode(errors="replace")
        for number, kind, status in re.findall(r"VIRTIO dev=(\d+) type=(\w+) \S+ \S+ \S+ status=(\w+)", listing):
            if status != "ok":
                raise RuntimeError(f"{self.name}: virtio device {number} ({kind}) is {status}")
            self.devices.setdefault(kind, int(number))
        for kind in ("blk", "rng"):
            if kind not in self.devices:
                raise RuntimeError(f"{self.name}: no {kind} device in {listing!r}")
        return listing.strip().splitlines()

    def set_mode(self, mode):
        """interrupt: the driver's defaults (EVENT_IDX taken, waits for interrupts). poll: spins on the used
        ring, EVENT_IDX taken too (notification_check shows whether either device loses notifications)."""
        event_idx = 1
        for kind in ("blk", "rng"):
            _, answer = self.command(f"virtio opt {self.devices[kind]} event_idx {event_idx}", "VIRTIO OPT")
            if field(answer, "event_idx") != str(event_idx) or field(answer, "status") != "ok":
                raise RuntimeError(f"{self.name}: {answer}")
        self.set_poll(mode == "poll")

    def set_poll(self, on):
        for kind in ("blk", "rng"):
            _, answer = self.command(f"virtio opt {self.devices[kind]} poll {int(on)}", "VIRTIO OPT")
            if field(answer, "poll") != str(int(on)) or field(answer, "status") != "ok":
                raise RuntimeError(f"{self.name}: {answer}")

    def thread_cpu(self):
        """{class: nanoseconds} over the process's threads now, from schedstat: time on a CPU
        (`vcpu`, `io`, `other`) and time runnable but waiting for one (`vcpu_wait`, ...)."""
        totals = {f"{kind}{part}": 0 for kind in ("vcpu", "io", "other") for part in ("", "_wait", "_user", "_system")}
        pid = self.child.process.pid
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return totals
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    comm = f.read().strip()
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    running, waiting = (int(v) for v in f.read().split()[:2])
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                user, system = (int(v) * 1_000_000_000 // CLOCK_TICKS for v in fields[11:13])  # utime, stime
            except (OSError, ValueError, IndexError):
                continue  # a thread that just ended
            kind = self.classify(comm, tid == str(pid))
            totals[kind] += running
            totals[kind + "_wait"] += waiting
            totals[kind + "_user"] += user
            totals[kind + "_system"] += system
        return totals

    def classify(self, comm, main):
        if self.name == "engram":
            return "vcpu" if comm.startswith("vcpu") else "io" if comm == "virtio-io" else "other"
        if comm.startswith("CPU ") and comm.endswith("/KVM"):  # thread names from -name debug-threads=on
            return "vcpu"
        return "io" if main or comm == "worker" else "other"

    def stop(self):
        self.child.stop()


def make_image(path, mib):
    """A raw image of `mib` MiB of random bytes, written in full and fsynced (no holes)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for offset in range(0, mib * MIB, 8 * MIB):
            os.pwrite(fd, os.urandom(8 * MIB), offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    allocated = os.stat(path).st_blocks * 512
    if allocated < mib * MIB:
        raise RuntimeError(f"{path}: only {allocated} of {mib * MIB} bytes allocated")


def bench_line(vm, workload, total, seed):
    _, kind, block, depth = workload[:4]
    return f"blk {vm.devices['blk']} bench {kind} {block} {depth} {total} {seed}"


FAILURES = []  # runs that ended with a status other than ok (recorded, then run again)


def run_bench(vm, workload, total, seed, mode="", retries=4):
    """One `blk bench` run: host-timed figures plus the guest's ticks and per-class CPU.

    A run that ends with another status (e.g. `timeout`: no request completed for 1 s, after which
    the driver resets the device) is recorded in FAILURES and run again, at most `retries` times;
    None if every try failed."""
    before = vm.thread_cpu()
    seconds, answer = vm.command(bench_line(vm, workload, total, seed), "BLK BENCH", timeout=300)
    after = vm.thread_cpu()
    if field(answer, "status") != "ok" or int(field(answer, "requests")) != total:
        FAILURES.append({"vmm": vm.name, "mode": mode, "workload": workload[0], "total_requests": total, "answer": answer,
                         "seconds": round(seconds, 3)})
        print(f"   {vm.name} {mode} {workload[0]}: {answer}", file=sys.stderr, flush=True)
        return run_bench(vm, workload, total, seed, mode, retries - 1) if retries > 0 else None
    nbytes = int(field(answer, "bytes"))
    cpu_us = {k: (after[k] - before[k]) / 1000 / total for k in after}
    return {"seconds": seconds, "iops": total / seconds, "mb_s": nbytes / seconds / 1e6, "ticks": int(field(answer, "ticks")),
            "cpu_us_per_request": cpu_us}


def run_rng(vm):
    before = vm.thread_cpu()
    seconds, answer = vm.command(f"rng {vm.devices['rng']} {RNG_BYTES}", "RNG ", timeout=120)
    after = vm.thread_cpu()
    got = int(field(answer, "bytes"))
    if got != RNG_BYTES or field(answer, "status") is not None:
        raise RuntimeError(f"{vm.name}: {answer}")
    return {"seconds": seconds, "mb_s": got / seconds / 1e6, "distinct": int(field(answer, "distinct")),
            "cpu_ms": {k: (after[k] - before[k]) / 1e6 for k in after}}


STRACE_LINE = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$")


def strace_run(vm, workload, total, mode, tmp):
    """One run with `strace -c -f -p PID` attached to the VMM: system calls per request, by name.

    strace slows every system call, so these runs are not in the medians; they count, not time."""
    path = os.path.join(tmp, f"strace-{vm.name}-{mode}-{workload[0]}.txt")
    tracer = subprocess.Popen(["strace", "-c", "-f", "-p", str(vm.child.process.pid), "-o", path],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    PROCESSES.append(tracer)
    attached = b""
    deadline = time.monotonic() + 10
    while b"attached" not in attached and time.monotonic() < deadline:  # "Process N attached", per thread
        attached += tracer.stderr.read1(4096) or b""
    time.sleep(0.3)
    try:
        seconds, answer = vm.command(bench_line(vm, workload, total, 7), "BLK BENCH", timeout=300)
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(30)
        PROCESSES.remove(tracer)
    completed = max(1, int(field(answer, "requests")))
    calls = {}
    with open(path) as f:
        for line in f:
            match = STRACE_LINE.match(line)
            if match and match.group(2) != "total":
                calls[match.group(2)] = int(match.group(1))
    return {"requests": completed, "status": field(answer, "status"), "seconds_under_strace": round(seconds, 3),
            "calls_per_request": {name: round(n / completed, 3) for name, n in sorted(calls.items(), key=lambda kv: -kv[1])
                                  if n / completed >= 0.005}}


def notification_check(vms, args):
    """Poll mode, 4 KiB random reads at qd 1, --check-runs runs per VMM with the driver taking
    EVENT_IDX and without it: how many runs stall (`timeout`: no request completed for 1 s) and the
    median IOPS of the rest. A stall in poll mode means the device never saw a notification."""
    if args.check_runs <= 0:
        return None
    workload, total = WORKLOADS[0], args.check_requests
    out = []
    for event_idx in (1, 0):
        for vm in vms:
            _, answer = vm.command(f"virtio opt {vm.devices['blk']} event_idx {event_idx}", "VIRTIO OPT")
            if field(answer, "event_idx") != str(event_idx) or field(answer, "status") != "ok":
                raise RuntimeError(f"{vm.name}: {answer}")
            vm.set_poll(True)
        rows = {vm.name: {"event_idx": event_idx, "runs": args.check_runs, "timeouts": 0, "iops": []} for vm in vms}
        for index in range(args.check_runs):
            for vm in vms:
                seconds, answer = vm.command(bench_line(vm, workload, total, 500 + index), "BLK BENCH", timeout=120)
                if field(answer, "status") == "ok":
                    rows[vm.name]["iops"].append(round(total / seconds))
                else:
                    rows[vm.name]["timeouts"] += 1
        for vm in vms:
            row = rows[vm.name]
            row["iops_median_of_ok_runs"] = round(statistics.median(row["iops"])) if row["iops"] else None
            out.append({"vmm": vm.name, **row})
            print(f"   notification check {vm.name} event_idx={event_idx}: {row['timeouts']}/{row['runs']} timed out", file=sys.stderr, flush=True)
    for vm in vms:
        vm.command(f"virtio opt {vm.devices['blk']} event_idx 1", "VIRTIO OPT")
    return {"workload": "poll randread 4096 qd 1", "requests_per_run": total, "rows": out}


def calibrate(vms, args, mode):
    """total_requests per workload so a run takes about args.seconds (geometric mean of both rates).

    Each calibration run must take at least a quarter of that (else the count is quadrupled and the
    run repeated), so one slow command line or a hiccup does not set the size."""
    totals, rates = {}, {}
    for workload in WORKLOADS:
        name = workload[0]
        count = workload[5] if args.quick else workload[4]
        while True:
            measured = {}
            for vm in vms:
                run = run_bench(vm, workload, count, 99, mode)
                if run is not None:
                    measured[vm.name] = count / run["seconds"]
            if not measured:
                raise RuntimeError(f"every calibration run of {mode} {name} failed on both VMMs")
            for vm in vms:  # a VMM whose every try failed is sized by the other's rate
                measured.setdefault(vm.name, next(iter(measured.values())))
            if count / max(measured.values()) >= args.seconds / 4 or count >= 1 << 20:
                break
            count *= 4
        rate = math.sqrt(measured["engram"] * measured["qemu"])
        step = 1000 if workload[2] == 4096 else 50
        totals[name] = max(step, int(round(rate * args.seconds / step)) * step)
        rates[name] = {k: round(v, 1) for k, v in measured.items()}
        print(f"   calibrate {mode} {name}: requests/s {rates[name]} -> {totals[name]} requests", file=sys.stderr, flush=True)
    return totals, rates


def command_overhead(vms, rounds=5):
    """The fixed cost of one command line: a 1-request bench (typing, echo, one request, the answer)."""
    samples = {vm.name: [] for vm in vms}
    for _ in range(rounds):
        for vm in vms:
            samples[vm.name].append(run_bench(vm, WORKLOADS[0], 1, 5)["seconds"] * 1000)
    return {name: round(statistics.median(values), 2) for name, values in samples.items()}


def ratio(a, b):
    return round(a / b, 3) if a and b else None


def collect(samples, key):
    return summary([s and s[key] for s in samples], 1 if key != "seconds" else 4)


def cpu_medians(samples, key):
    present = [s for s in samples if s]
    return {k: round(statistics.median(s[key][k] for s in present), 2) if present else None for k in present[0][key]} if present else {}


def measure(args, tmp):
    engram_image, qemu_image = os.path.join(tmp, "engram.img"), os.path.join(tmp, "qemu.img")
    started = time.monotonic()
    for path in (engram_image, qemu_image):
        make_image(path, args.image_mib)
    print(f"== images: 2 × {args.image_mib} MiB in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    engram = VM("engram", [args.engram, "run", "--kernel", KERNEL, "--memory", "256M", "--cpus", "1",
                           "--disk", engram_image, "--rng", RNG_OPTION, "--cmdline", "cpus=1"])
    qemu = VM("qemu", ["qemu-system-x86_64", "-M", "microvm,acpi=off", "-accel", "kvm", "-m", "256M", "-smp", "1",
                       "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-name", "qemu,debug-threads=on",
                       "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-global", "virtio-mmio.force-legacy=false",
                       "-kernel", KERNEL, "-append", "cpus=1",
                       "-drive", f"id=d0,file={qemu_image},format=raw,if=none,discard=unmap", "-device", "virtio-blk-device,drive=d0",
                       "-object", "rng-random,filename=/dev/urandom,id=rng0", "-device", "virtio-rng-device,rng=rng0"])
    vms = (engram, qemu)
    result = {"commands": {vm.name: vm.child.command for vm in vms}}
    try:
        for vm in vms:
            vm.boot()
            result.setdefault("virtio_listing", {})[vm.name] = vm.discover()
            result.setdefault("device_numbers", {})[vm.name] = vm.devices
        result["command_overhead_ms"] = command_overhead(vms)
        print(f"   one-request command: {result['command_overhead_ms']} ms", file=sys.stderr, flush=True)
        totals, calibration = {}, {}
        for mode in MODES:
            for vm in vms:
                vm.set_mode(mode)
            totals[mode], calibration[mode] = calibrate(vms, args, mode)
        result["total_requests"], result["calibration_requests_per_s"] = totals, calibration

        samples = {mode: {w[0]: {vm.name: [] for vm in vms} for w in WORKLOADS} for mode in MODES}
        rng = {mode: {vm.name: [] for vm in vms} for mode in MODES}
        for round_index in range(args.rounds):
            order = vms if round_index % 2 == 0 else vms[::-1]
            for mode in MODES:
                for vm in vms:
                    vm.set_mode(mode)
                for workload in WORKLOADS:
                    for vm in order:
                        run = run_bench(vm, workload, totals[mode][workload[0]], 1000 + round_index, mode)
                        samples[mode][workload[0]][vm.name].append(run)
                for vm in order:
                    rng[mode][vm.name].append(run_rng(vm))
            print(f"   round {round_index + 1}/{args.rounds} done ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
        result["notification_check"] = notification_check(vms, args)
        result["strace"] = {}
        for spec in [] if args.strace == "none" else args.strace.split(","):
            mode, name = spec.split(":")
            workload = next(w for w in WORKLOADS if w[0] == name)
            for vm in vms:
                vm.set_mode(mode)
                traced = strace_run(vm, workload, totals[mode][name], mode, tmp)
                result["strace"].setdefault(spec, {})[vm.name] = traced
                print(f"   strace {vm.name} {spec}: {traced}", file=sys.stderr, flush=True)
        for vm in vms:
            vm.set_mode("interrupt")
    finally:
        for vm in vms:
            vm.stop()
    result["failed_runs"] = FAILURES
    result["blk"] = summarize_blk(samples, totals)
    result["rng"] = summarize_rng(rng)
    return result


def summarize_blk(samples, totals):
    out = {}
    for mode, by_workload in samples.items():
        out[mode] = {}
        for workload in WORKLOADS:
            name, kind, block, depth = workload[:4]
            metric = "iops" if kind == "randread" else "mb_s"
            entry = {"mode": kind, "block_bytes": block, "queue_depth": depth, "total_requests": totals[mode][name], "metric": metric}
            for vm, runs in by_workload[name].items():
                entry[vm] = {metric: collect(runs, metric), "seconds": collect(runs, "seconds"),
                             "guest_ticks": [r and r["ticks"] for r in runs], "cpu_us_per_request_median": cpu_medians(runs, "cpu_us_per_request")}
                if metric == "mb_s":
                    entry[vm]["iops"] = collect(runs, "iops")
            entry["ratio_engram_over_qemu"] = ratio(median(entry["engram"], metric), median(entry["qemu"], metric))
            out[mode][name] = entry
    return out


def summarize_rng(rng):
    out = {}
    for mode, by_vm in rng.items():
        entry = {vm: {"mb_s": collect(runs, "mb_s"), "seconds": collect(runs, "seconds"), "cpu_ms_median": cpu_medians(runs, "cpu_ms")}
                 for vm, runs in by_vm.items()}
        entry["ratio_engram_over_qemu"] = ratio(entry["engram"]["mb_s"]["median"], entry["qemu"]["mb_s"]["median"])
        out[mode] = entry
    return out


def num(value, spec=".0f", unit=""):
    return "failed" if value is None else f"{value:{spec}}{unit}"


def median(entry, key):
    return entry[key]["median"] if entry.get(key) else None


def user_share(d):
    user, system = d.get("io_user"), d.get("io_system")
    return "—" if user is None or system is None or user + system == 0 else f"{100 * user / (user + system):.0f}%"


def all_values(summarized, runs):
    if not summarized:
        return ", ".join(["failed"] * runs)
    return ", ".join(num(v) for v in summarized["all"])


def fmt_metric(entry, vm):
    return num(median(entry[vm], entry["metric"]), ",.0f", " IOPS" if entry["metric"] == "iops" else " MB/s")


def verdict(r):
    if r is None:
        return "—"
    return f"**{r:.2f}**" + (" ✓" if r >= 1.0 else " ≈ (within 1%)" if r >= 0.99 else " ✗")


def build_note(binary):
    if binary["build"] == "debug":
        return (f"**a debug build** (`swift build`, -Onone: {binary['path']}, built {binary['built']}), because no release "
                f"build with the devices existed when this ran; every figure understates what a release build does")
    return f"{binary['build']} build {binary['path']}, built {binary['built']}"


def report(result):
    rows = []
    for mode in MODES:
        for name, entry in result["blk"][mode].items():
            e, q = entry["engram"], entry["qemu"]
            what = ("4 KiB random read" if entry["mode"] == "randread" else "1 MiB sequential " +
                    ("read" if entry["mode"] == "seqread" else "write")) + f", qd {entry['queue_depth']}"
            rows.append(f"| {mode} | {what} | {fmt_metric(entry, 'engram')} | {fmt_metric(entry, 'qemu')} | "
                        f"{verdict(entry['ratio_engram_over_qemu'])} | {entry['total_requests']} | "
                        f"{num(median(e, 'seconds') and median(e, 'seconds') * 1000)} / {num(median(q, 'seconds') and median(q, 'seconds') * 1000)} ms |")
    rng_rows = []
    for mode in MODES:
        entry = result["rng"][mode]
        rng_rows.append(f"| {mode} | `rng <dev> 1048576` | {entry['engram']['mb_s']['median']:.1f} MB/s | {entry['qemu']['mb_s']['median']:.1f} MB/s | "
                        f"**{entry['ratio_engram_over_qemu']:.2f}** | {entry['engram']['seconds']['median'] * 1000:.0f} / "
                        f"{entry['qemu']['seconds']['median'] * 1000:.0f} ms |")
    cpu_rows = []
    for mode in MODES:
        for name, entry in result["blk"][mode].items():
            e, q = entry["engram"]["cpu_us_per_request_median"], entry["qemu"]["cpu_us_per_request_median"]
            cpu_rows.append(f"| {mode} | {name} | " + " | ".join(f"{num(d.get(k), '.1f')} ({num(d.get(k + '_wait'), '.1f')})"
                                                                 for d in (e, q) for k in ("vcpu", "io")) +
                            "".join(f" | {user_share(d)}" for d in (e, q)) + " |")
    all_runs = []
    for mode in MODES:
        for name, entry in result["blk"][mode].items():
            metric = entry["metric"]
            all_runs.append(f"- {mode} {name} ({'IOPS' if metric == 'iops' else 'MB/s'}): Engram "
                            f"{all_values(entry['engram'][metric], result['rounds'])}; QEMU "
                            f"{all_values(entry['qemu'][metric], result['rounds'])}")
        entry = result["rng"][mode]
        all_runs.append(f"- {mode} rng (MB/s): Engram {', '.join(f'{v:.1f}' for v in entry['engram']['mb_s']['all'])}; "
                        f"QEMU {', '.join(f'{v:.1f}' for v in entry['qemu']['mb_s']['all'])}")
    below = [f"{mode} {name} ({entry['ratio_engram_over_qemu']:.2f})" for mode in MODES
             for name, entry in result["blk"][mode].items() if entry["ratio_engram_over_qemu"] is not None and entry["ratio_engram_over_qemu"] < 1.0]
    met = "all block figures met" if not below else "not met for " + ", ".join(below)
    overhead = result["command_overhead_ms"]
    findings = result.get("findings") or ""
    check = result.get("notification_check")
    check_section = ""
    if check:
        check_rows = "\n".join(f"| {'Engram' if r['vmm'] == 'engram' else 'QEMU'} | {'on' if r['event_idx'] else 'off'} | "
                               f"{r['timeouts']} of {r['runs']} | {num(r['iops_median_of_ok_runs'], ',.0f')} |" for r in check["rows"])
        check_section = f"""
## Lost notifications: runs that stall

{check['workload']} ({check['requests_per_run']} requests per run), the driver taking EVENT_IDX (its default, as in
both modes above) and not taking it (`virtio opt <dev> event_idx 0`), alternating VMMs. A stalled run ends `status=timeout`: no request
completed for 1 s. In poll mode the driver never waits for an interrupt, so a stall means the device never noticed a
request the driver made available: a notification the device asked for (EVENT_IDX's avail_event) and did not get.

| VMM | EVENT_IDX | runs that stalled | IOPS (median of the other runs) |
|---|---|---|---|
{check_rows}
"""
    strace_rows = []
    for spec, by_vm in (result.get("strace") or {}).items():
        for vm, traced in by_vm.items():
            calls = ", ".join(f"{name} {n:g}" for name, n in list(traced["calls_per_request"].items())[:7])
            status = "" if traced.get("status", "ok") == "ok" else f" (run ended `status={traced['status']}` after {traced['requests']} requests)"
            strace_rows.append(f"| {spec.replace(':', ' ')} | {'Engram' if vm == 'engram' else 'QEMU'} | {calls}{status} |")
    strace_section = ("\n## System calls per request (`strace -c -f -p`, one extra run each, not in the medians)\n\n"
                      "| driver mode, workload | VMM | calls per request (most frequent first; ≥ 0.005) |\n|---|---|---|\n" +
                      "\n".join(strace_rows) + "\n") if strace_rows else ""
    failed = result.get("failed_runs") or []
    failures = ("\n## Runs that did not end ok\n\nRecorded, then run again (not in the medians):\n\n" +
                "\n".join(f"- {f['vmm']} {f['mode']} {f['workload']} ({f['total_requests']} requests, {f['seconds']} s): `{f['answer']}`"
                           for f in failed) + "\n") if failed else "\nEvery run ended `status=ok` with all requests completed.\n"
    return f"""# Devices: Engram vs QEMU microvm (virtio-blk, virtio-rng)

Written by `bench/devices.py` on {result['date']}, {result['host']}, Engram at commit {result['commit']}
({build_note(result['engram_binary'])}). {result['machine_notes']}
QEMU {result['qemu_version']} `-M microvm,acpi=off -accel kvm`, `virtio-blk-device` on
`-drive format=raw,if=none,discard=unmap` (default cache=writeback, aio=threads) and `virtio-rng-device` on
`rng-random` `/dev/urandom`, `-global virtio-mmio.force-legacy=false`. Engram `run --disk IMG --rng {RNG_OPTION}`.
Both: the test kernel, 256 MiB, 1 vCPU, `cpus=1`, the same ring-3 virtio driver. {result['rounds']} round(s); per round
every workload runs on Engram and QEMU back to back (order alternating per round); medians. Host load average
{result['load_average']['start']} at the start, {result['load_average']['end']} at the end.{' **Quick run** (`--quick`): one round, short runs; not the committed figures.' if result['quick'] else ''}

- **Disks**: one fresh raw image per VMM, {result['image_mib']} MiB in {result['directory_note']}, written in full with
  random bytes (not sparse) and fsynced before the VMs start. Nothing is dropped from the page cache, so **the images
  are in the host page cache**: reads never touch the disk, this measures the VMM's request path, not storage.
  Sequential writes dirty page-cache pages (both VMMs write without O_DIRECT; the host writes them back in the background).
- **Timing**: each `blk <dev> bench <mode> <block> <qd> <total> <seed>` is timed on the host from sending the line
  to receiving its `BLK BENCH` line (the guest only has 100 Hz ticks). A one-request command costs
  {overhead['engram']:.1f} ms (Engram) and {overhead['qemu']:.1f} ms (QEMU) (typing, echo, answer); it is not subtracted.
  total_requests (same for both VMMs) is sized by an unrecorded calibration pass so a run takes about
  {result['seconds_per_run']} s. MB/s are 10^6 bytes/s.
- **Modes**: *interrupt* (the driver's default) halts until the device's interrupt; every wait costs an emulated
  interrupt delivery in guest ring 0, which this host's KVM (PVM) runs in its instruction emulator, so interrupt-mode
  figures, queue depth 1 above all, mostly measure KVM's emulator. *poll* (`virtio opt <dev> poll 1`) spins in ring 3
  on the used ring with interrupts suppressed, so it measures the device; on 2 host cores the spinning vCPU competes
  with the VMM's I/O thread(s). The driver takes EVENT_IDX in both modes. (An earlier run found Engram's device
  losing notifications with EVENT_IDX: its round limit left the event index stale. Fixed in 7261304; the
  "Lost notifications" check below runs every time.)
- **rng**: Engram's limiter is set to 1 GiB/s with 1 MiB bursts (`--rng {RNG_OPTION}`; the default is 1 MiB/s) so it
  is not what is measured. The driver sends 4 KiB buffers one at a time.

Target: block IOPS and throughput at least QEMU's (Engram / QEMU ≥ 1.0): **{met}**.

## virtio-blk

| driver mode | workload | Engram | QEMU | Engram / QEMU | requests per run | run time (Engram / QEMU) |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

## virtio-rng

| driver mode | command | Engram | QEMU | Engram / QEMU | time (Engram / QEMU) |
|---|---|---|---|---|---|
{chr(10).join(rng_rows)}

## virtio-vsock — not measured yet

| figure | Engram | ceiling / peer | status |
|---|---|---|---|
| round trip latency p50 / p99 | — | Unix-socket echo on the host | **not measured yet** |
| stream throughput | — | Unix-socket echo on the host | **not measured yet** |
| `engram restore --memory map` → first vsock echo (target ≤ 30 ms) | — | — | **not measured yet** |

vsock is not part of this run: Engram's virtio-vsock device was still being written when this bench was set up (it
was merging while this ran), so this bench has no vsock harness yet. The harness needs a host client that speaks
Firecracker's `CONNECT <port>` protocol, a Unix-socket echo on the host as the ceiling (QEMU has no vsock peer on
this host: no vhost-vsock), and a snapshot taken with `vsock listen` running, restored with `--memory map` and timed to
the first echo. These rows get figures when that harness is added.

## Where the time goes: CPU per request (µs, medians)

From /proc/PID/task/TID/schedstat before and after each run, divided by the requests: time on a CPU, and in
parentheses time runnable but waiting for a CPU (the host's other work and the VMM's own threads competing for
the 2 cores). Other threads use next to nothing (in the JSON). "In user space": the share of the I/O threads' CPU
time outside the kernel (utime / (utime + stime) from /proc/PID/task/TID/stat, 10 ms granularity), the rest being
system calls (preadv/pwritev copying between the page cache and guest memory, eventfds, epoll). *I/O* is Engram's
`virtio-io` thread; for QEMU its main loop thread (which serves the virtio-blk queue and completes requests)
plus its thread-pool `worker` threads (which do the preadv/pwritev). Workers that start and end within one run are
missed (QEMU keeps idle workers for 10 s, so few are).

| driver mode | workload | Engram vCPU | Engram I/O | QEMU vCPU | QEMU I/O | Engram I/O in user space | QEMU I/O in user space |
|---|---|---|---|---|---|---|---|
{chr(10).join(cpu_rows)}
{check_section}{strace_section}{findings}{failures}
## All runs

{chr(10).join(all_runs)}
"""


def git_commit():
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no", "--", "Sources", "Package.swift"],
                               capture_output=True, text=True).stdout.strip()
        return commit + (" (with uncommitted changes in Sources)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.8, help="target time of one bench run")
    parser.add_argument("--quick", action="store_true", help="1 round, short runs, smaller images (a check of the script)")
    parser.add_argument("--image-mib", type=int, default=1024)
    parser.add_argument("--engram", default=os.path.join(ROOT, ".build/release/engram"))
    parser.add_argument("--tmpdir", default="/var/tmp", help="where the disk images go (not tmpfs)")
    parser.add_argument("--output", default=os.path.join(ROOT, "docs/results/devices"))
    parser.add_argument("--strace", default=DEFAULT_STRACE,
                        help="comma-separated MODE:WORKLOAD runs to repeat once per VMM under strace -c -f (system calls per request), or none")
    parser.add_argument("--check-runs", type=int, default=10,
                        help="runs per VMM and EVENT_IDX setting of the lost-notification check (0: skip)")
    parser.add_argument("--check-requests", type=int, default=2000)
    parser.add_argument("--findings", help="a Markdown file whose text goes into the report as findings")
    parser.add_argument("--report-only", action="store_true", help="rewrite OUTPUT.md from OUTPUT.json, run nothing")
    args = parser.parse_args()
    args.engram = os.path.abspath(args.engram)
    if args.report_only:
        with open(args.output + ".json") as saved:
            result = json.load(saved)
        if args.findings:
            with open(args.findings) as f:
                result["findings"] = "\n" + f.read().strip() + "\n"
            with open(args.output + ".json", "w") as out:
                json.dump(result, out, indent=2)
                out.write("\n")
        with open(args.output + ".md", "w") as out:
            out.write(report(result))
        return 0
    if args.quick:
        args.rounds, args.seconds, args.image_mib = 1, 0.3, min(args.image_mib, 256)
        args.check_runs = min(args.check_runs, 2)
        if args.strace == DEFAULT_STRACE:
            args.strace = "poll:randread-4k-qd32"

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_start = " ".join(open("/proc/loadavg").read().split()[:3])
    tmp = tempfile.mkdtemp(prefix="engram-devices-", dir=args.tmpdir)
    source = os.path.realpath(args.engram)
    built = datetime.fromtimestamp(os.path.getmtime(source), timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    build = "debug" if "/debug/" in source else "release" if "/release/" in source else "unknown"
    try:
        args.engram = os.path.join(tmp, "engram")  # a copy: a build that replaces the binary mid-run changes nothing
        shutil.copy2(source, args.engram)
        fs = subprocess.run(["df", "--output=fstype,source", tmp], capture_output=True, text=True).stdout.split("\n")[1].split()
        measured = measure(args, tmp)
    finally:
        kill_all()
        shutil.rmtree(tmp, ignore_errors=True)
    qemu_version = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": f"{platform.node()} ({os.cpu_count()} CPUs, kernel {platform.release()})",
        "commit": git_commit(),
        "engram_binary": {"path": source, "built": built, "build": build},
        "machine_notes": "KVM here is PVM (kvm_pvm, no hardware virtualization): guest ring 0 is emulated, ring 3 runs "
                         "natively; 2 cores, 24 GiB, shared with other work (noisy), hence medians.",
        "qemu_version": qemu_version.replace("QEMU emulator version ", ""),
        "directory_note": f"{args.tmpdir} ({fs[0]} on {fs[1]})",
        "load_average": {"start": load_start, "end": " ".join(open("/proc/loadavg").read().split()[:3])},
        "quick": args.quick, "rounds": args.rounds, "seconds_per_run": args.seconds, "image_mib": args.image_mib,
        "rng_option": RNG_OPTION,
        "vsock": {"status": "not measured yet",
                  "why": "Engram's vsock device was still being written when this bench was set up; no vsock harness yet; QEMU has no vsock peer on this host"},
        **measured,
    }
    if args.findings:
        with open(args.findings) as f:
            result["findings"] = "\n" + f.read().strip() + "\n"
    with open(args.output + ".json", "w") as out:
        json.dump(result, out, indent=2)
        out.write("\n")
    with open(args.output + ".md", "w") as out:
        out.write(report(result))
    print(report(result))


if __name__ == "__main__":
    sys.exit(main())
