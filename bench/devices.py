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

virtio-vsock, Engram only (QEMU has no vsock peer on this host), `--parts vsock`: the test kernel with
`--vsock 3,PATH` runs `vsock listen 5000` (its echo server); a host client speaks Firecracker's handshake
(`CONNECT 5000\n`, `OK <hostport>\n`) and then
- round trips: --vsock-exchanges exchanges of --vsock-size bytes on one connection, each timed with
  perf_counter_ns, p50/p99 per run, in the driver's interrupt mode, plus a short run with `virtio opt <vsock>
  poll 1` (which only suppresses interrupts: the background listener is then served once per 10 ms tick);
- stream: --vsock-mib MiB echoed through one connection (one thread sends, another receives), MB/s;
both also against a Unix-socket echo on the host (a forked Python process answering the same handshake) as
the ceiling, same client code; then
- restore to first echo: a snapshot taken right after `vsock listen`; per round `engram restore SNAP --memory
  map --vsock 3,PATH2`, timed from spawning it until a client that retries connecting to PATH2 every 0.2 ms
  gets its first 64-byte echo back; the VMM's "restored ... in X ms" line beside it.

--parts picks what runs (default both); a part not run keeps its figures from OUTPUT.json, so `--parts vsock`
(under a minute) refreshes the vsock section alone.
Writes docs/results/devices.md and docs/results/devices.json.
"""
import argparse, json, math, multiprocessing, os, platform, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time
from datetime import datetime, timezone

from benchlib import PROCESSES, Child, die_with_parent, kill_all, restore_answer, run_json, standby_restore, summary

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

    def discover(self, kinds=("blk", "rng")):
        start = len(self.child.out)
        self.command("virtio", "VIRTIO devices=")
        listing = self.child.out[start:].decode(errors="replace")
        for number, kind, status in re.findall(r"VIRTIO dev=(\d+) type=(\w+) \S+ \S+ \S+ status=(\w+)", listing):
            if status != "ok":
                raise RuntimeError(f"{self.name}: virtio device {number} ({kind}) is {status}")
            self.devices.setdefault(kind, int(number))
        for kind in kinds:
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


# ---- virtio-vsock --------------------------------------------------------------------------------

VSOCK_CID, VSOCK_PORT = 3, 5000
RESTORED_LINE = re.compile(rb"restored .* in ([\d.]+) ms")


def read_line(sock, limit=128):
    """One `\\n`-ended line from a socket, read a byte at a time (nothing after it is consumed)."""
    line = b""
    while not line.endswith(b"\n") and len(line) < limit:
        byte = sock.recv(1)
        if not byte:
            break
        line += byte
    return line


def vsock_client(path, port=VSOCK_PORT, timeout=10):
    """A connected socket after Firecracker's handshake (`CONNECT <port>\\n`, `OK <hostport>\\n`)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall(f"CONNECT {port}\n".encode())
        answer = read_line(sock)
    except OSError:
        sock.close()
        raise
    if not answer.startswith(b"OK "):
        sock.close()
        raise ConnectionError(f"{path}: CONNECT {port} answered {answer!r}")
    return sock


def echo_server(path):
    """The ceiling: a Unix-socket echo on the host in its own process, answering the same handshake
    (`CONNECT <port>\\n` → `OK 0\\n`) so the client code is the same; one thread per connection."""
    die_with_parent()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)

    def serve(conn):
        with conn:
            if not read_line(conn).startswith(b"CONNECT "):
                return
            conn.sendall(b"OK 0\n")
            buffer = bytearray(1 << 18)
            view = memoryview(buffer)
            while True:
                n = conn.recv_into(buffer)
                if not n:
                    return
                conn.sendall(view[:n])

    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def recv_exact(sock, view):
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if not n:
            raise ConnectionError(f"closed after {got} of {len(view)} bytes")
        got += n


def round_trips(sock, count, size, warmup=50):
    """Nanoseconds of `count` exchanges (send `size` bytes, receive them back), after `warmup` untimed ones."""
    payload = os.urandom(size)
    back = bytearray(size)
    view = memoryview(back)
    times = []
    for index in range(warmup + count):
        start = time.perf_counter_ns()
        sock.sendall(payload)
        recv_exact(sock, view)
        elapsed = time.perf_counter_ns() - start
        if back != payload:
            raise RuntimeError(f"echo {index}: the bytes differ")
        if index >= warmup:
            times.append(elapsed)
    return times


def stream(sock, total, chunk=64 * 1024):
    """Seconds to echo `total` bytes through one connection: one thread sends, this one receives
    (from the first send to the last byte back); the bytes are compared at the end."""
    block = os.urandom(MIB)
    expected = block * (total // MIB)
    received = bytearray(len(expected))
    view, source = memoryview(received), memoryview(expected)
    failure = []

    def send():
        try:
            for offset in range(0, len(expected), chunk):
                sock.sendall(source[offset:offset + chunk])
        except OSError as error:
            failure.append(error)

    sender = threading.Thread(target=send, daemon=True)
    start = time.perf_counter()
    sender.start()
    recv_exact(sock, view)
    seconds = time.perf_counter() - start
    sender.join()
    if failure:
        raise failure[0]
    if received != expected:
        raise RuntimeError("stream: the echoed bytes differ")
    return seconds


def percentile(values, p):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def latency_run(path, count, size, vm=None):
    """One connection, `count` timed exchanges: p50/p99/mean in µs, and the VMM's CPU per exchange."""
    with vsock_client(path) as sock:
        before = vm.thread_cpu() if vm else None
        times = round_trips(sock, count, size)
        after = vm.thread_cpu() if vm else None
    run = {"p50_us": percentile(times, 50) / 1000, "p99_us": percentile(times, 99) / 1000,
           "mean_us": statistics.mean(times) / 1000, "max_us": max(times) / 1000}
    if vm:
        run["cpu_us_per_exchange"] = {k: (after[k] - before[k]) / 1000 / (count + 50) for k in ("vcpu", "io", "other", "vcpu_wait", "io_wait")}
    return run


def throughput_run(path, total):
    with vsock_client(path, timeout=60) as sock:
        seconds = stream(sock, total)
    return {"seconds": seconds, "mb_s": total / seconds / 1e6}


def first_echo(path, started, process, payload):
    """A host client's first echo through PATH: it tries to connect every 0.2 ms until the socket exists
    and `CONNECT` is answered `OK`, then sends `payload`; monotonic times of each step."""
    attempts, connected = 0, None
    back = bytearray(len(payload))
    while True:
        if process.poll() is not None or time.monotonic() - started > 20:
            raise RuntimeError(f"no vsock echo through {path} (exit status {process.poll()})")
        attempts += 1
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        try:
            sock.connect(path)
            connected = connected or time.monotonic()
            sock.sendall(f"CONNECT {VSOCK_PORT}\n".encode())
            if read_line(sock).startswith(b"OK "):
                break
        except OSError:
            pass
        sock.close()
        time.sleep(0.0002)
    accepted = time.monotonic()
    with sock:
        sock.sendall(payload)
        recv_exact(sock, memoryview(back))
        echoed = time.monotonic()
    if back != payload:
        raise RuntimeError("restore: the first echo differs")
    return {"connected": connected, "accepted": accepted, "echoed": echoed, "attempts": attempts}


def restore_to_echo(args, snapshot, path):
    """`engram restore SNAPSHOT --memory map --vsock CID,PATH`, timed from spawning it until a host client's
    first echo (64 bytes) comes back. The client runs on its own thread while this one reads the VMM's
    stderr as it arrives, so the "restored" line is timed too."""
    if os.path.exists(path):
        os.unlink(path)
    child = Child([args.engram, "restore", snapshot, "--memory", "map", "--vsock", f"{VSOCK_CID},{path}"], name="engram restore")
    outcome = {}

    def client():
        try:
            outcome.update(first_echo(path, child.started, child.process, os.urandom(64)))
        except Exception as error:  # handed to the main thread
            outcome["error"] = error

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        child.pump_until(lambda: not thread.is_alive(), 30, "the first vsock echo")
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        _, match = child.wait_for(RESTORED_LINE, 10, "the restored line", stream="err")
        line_at = next(t for t, line in child.stderr_lines if RESTORED_LINE.search(line.encode()))
        return {"spawn_to_echo_ms": (outcome["echoed"] - child.started) * 1000,
                "spawn_to_restored_line_ms": (line_at - child.started) * 1000, "restore_ms": float(match.group(1)),
                "spawn_to_connect_ms": (outcome["connected"] - child.started) * 1000,
                "spawn_to_ok_ms": (outcome["accepted"] - child.started) * 1000, "connect_attempts": outcome["attempts"]}
    finally:
        child.stop()


def standby_restore_to_echo(args, snapshot, path, api):
    """The same first echo from a standby VMM: `engram standby --memory 256M --vsock CID,PATH` made ready
    first (not timed), then from sending PUT /vm/restore (map) until the client's first echo comes back."""
    if os.path.exists(path):
        os.unlink(path)
    child = Child([args.engram, "standby", "--memory", "256M", "--cpus", "1", "--vsock", f"{VSOCK_CID},{path}",
                   "--api-socket", api], name="engram standby")
    try:
        child.wait_for(re.compile(rb"control API on "), 30, "the standby VMM", stream="err")
        connection, sent = standby_restore(api, {"snapshot": snapshot, "memory": "map"})
        outcome = first_echo(path, sent, child.process, os.urandom(64))
        answered, answer = restore_answer(connection)
        return {"request_to_echo_ms": (outcome["echoed"] - sent) * 1000, "restore_ms": answer["milliseconds_to_running"],
                "request_to_answer_ms": (answered - sent) * 1000, "request_to_ok_ms": (outcome["accepted"] - sent) * 1000}
    finally:
        child.stop()


def measure_vsock_standby(args, tmp):
    """Only the standby rows: a snapshot of a VM whose guest listens on the vsock port, then
    --restore-rounds restores of it into standby VMMs, each timed to the first echo."""
    guest_path, api, snapshot = os.path.join(tmp, "v.sock"), os.path.join(tmp, "api.sock"), os.path.join(tmp, "vsock.snap")
    vm = VM("engram", [args.engram, "run", "--kernel", KERNEL, "--memory", "256M", "--cpus", "1",
                       "--vsock", f"{VSOCK_CID},{guest_path}", "--api-socket", api, "--cmdline", "cpus=1"])
    try:
        vm.boot()
        vm.discover(("vsock",))
        vm.command(f"vsock listen {VSOCK_PORT}", "VSOCK LISTEN")
        run_json([args.engram, "snapshot", api, snapshot])
    finally:
        vm.stop()
    runs = []
    for index in range(args.restore_rounds):
        runs.append(standby_restore_to_echo(args, snapshot, os.path.join(tmp, f"standby{index}.sock"), os.path.join(tmp, "standby-api.sock")))
        print(f"   standby restore {index + 1}/{args.restore_rounds}: first echo {runs[-1]['request_to_echo_ms']:.1f} ms after the request "
              f"({runs[-1]['restore_ms']:.2f} ms to running)", file=sys.stderr, flush=True)
    return {"standby_restore_to_first_echo": {key: summary([r[key] for r in runs], 2) for key in runs[0]}, "standby_runs": runs}


def help_exit_ms(args):
    """Spawn → exit of `engram --help`: starting the process (exec, dynamic linking, Swift runtime), no VM."""
    started = time.monotonic()
    subprocess.run([args.engram, "--help"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return (time.monotonic() - started) * 1000


def measure_vsock(args, tmp):
    """Latency and throughput against the guest's echo listener and against the host echo, then
    restore → first echo from a snapshot taken while the listener ran."""
    guest_path, host_path = os.path.join(tmp, "v.sock"), os.path.join(tmp, "host-echo.sock")
    api, snapshot = os.path.join(tmp, "api.sock"), os.path.join(tmp, "vsock.snap")
    count, total = args.vsock_exchanges, args.vsock_mib * MIB
    server = multiprocessing.get_context("fork").Process(target=echo_server, args=(host_path,), daemon=True)
    server.start()
    vm = VM("engram", [args.engram, "run", "--kernel", KERNEL, "--memory", "256M", "--cpus", "1",
                       "--vsock", f"{VSOCK_CID},{guest_path}", "--api-socket", api, "--cmdline", "cpus=1"])
    started = time.monotonic()
    linked = subprocess.run(["ldd", args.engram], capture_output=True, text=True).stdout
    result = {"swift_runtime": "dynamic" if "libswiftCore.so" in linked else "static",
              "command": vm.child.command, "exchange_bytes": args.vsock_size, "exchanges_per_run": count,
              "poll_exchanges_per_run": args.vsock_poll_exchanges, "stream_bytes": total, "rounds": args.rounds,
              "restore_rounds": args.restore_rounds}
    samples = {"engram": [], "host": [], "engram_poll": [], "engram_stream": [], "host_stream": []}
    try:
        vm.boot()
        result["virtio_listing"] = vm.discover(("vsock",))
        vm.command(f"vsock listen {VSOCK_PORT}", "VSOCK LISTEN")
        result["snapshot"] = run_json([args.engram, "snapshot", api, snapshot])  # the listener runs, no connection open
        result["snapshot"].pop("path", None)
        dev = vm.devices["vsock"]
        for round_index in range(args.rounds):
            targets = [("engram", guest_path, vm), ("host", host_path, None)]
            for name, path, owner in targets if round_index % 2 == 0 else targets[::-1]:
                samples[name].append(latency_run(path, count, args.vsock_size, owner))
            for name, path in [("engram_stream", guest_path), ("host_stream", host_path)]:
                samples[name].append(throughput_run(path, total))
            if args.vsock_poll_exchanges:
                _, answer = vm.command(f"virtio opt {dev} poll 1", "VIRTIO OPT")
                samples["engram_poll"].append(latency_run(guest_path, args.vsock_poll_exchanges, args.vsock_size, vm))
                vm.command(f"virtio opt {dev} poll 0", "VIRTIO OPT")
            e, h = samples["engram"][-1], samples["host"][-1]
            print(f"   vsock round {round_index + 1}/{args.rounds}: p50/p99 {e['p50_us']:.0f}/{e['p99_us']:.0f} µs "
                  f"(host echo {h['p50_us']:.1f}/{h['p99_us']:.1f}), stream {samples['engram_stream'][-1]['mb_s']:.1f} MB/s "
                  f"(host echo {samples['host_stream'][-1]['mb_s']:.0f})"
                  + (f", poll 1 p50 {samples['engram_poll'][-1]['p50_us']:.0f} µs" if samples["engram_poll"] else "")
                  + f" ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
        vm.child.pump_for(0.1)  # the last connection's close, served on the guest's next tick after poll 0
        _, stats = vm.command("vsock stats", "VSOCK STATS")
        result["guest_stats"] = stats
    finally:
        vm.stop()
        server.terminate()
        server.join(5)
    restores, standby = [], []
    for index in range(args.restore_rounds):
        run = restore_to_echo(args, snapshot, os.path.join(tmp, f"restored{index}.sock"))
        run["help_exit_ms"] = help_exit_ms(args)
        restores.append(run)
        ready = standby_restore_to_echo(args, snapshot, os.path.join(tmp, f"standby{index}.sock"), os.path.join(tmp, "standby-api.sock"))
        standby.append(ready)
        print(f"   restore {index + 1}/{args.restore_rounds}: first echo {run['spawn_to_echo_ms']:.1f} ms "
              f"(restored line: {run['restore_ms']} ms, at {run['spawn_to_restored_line_ms']:.1f} ms); standby: first echo "
              f"{ready['request_to_echo_ms']:.1f} ms after the request ({ready['restore_ms']:.2f} ms to running)", file=sys.stderr, flush=True)
    result["latency"] = {name: summarize_latency(samples[name]) for name in ("engram", "host", "engram_poll") if samples[name]}
    result["stream"] = {name.split("_")[0]: {"mb_s": collect(samples[name], "mb_s"), "seconds": collect(samples[name], "seconds")}
                        for name in ("engram_stream", "host_stream")}
    result["restore_to_first_echo"] = {key: summary([r[key] for r in restores], 2) for key in restores[0]}
    result["standby_restore_to_first_echo"] = {key: summary([r[key] for r in standby], 2) for key in standby[0]}
    result["runs"] = {name: values for name, values in samples.items() if values}
    result["restore_runs"] = restores
    return result


def summarize_latency(runs):
    out = {key: summary([r[key] for r in runs], 1) for key in ("p50_us", "p99_us", "mean_us", "max_us")}
    if runs[0].get("cpu_us_per_exchange"):
        out["cpu_us_per_exchange_median"] = {k: round(statistics.median(r["cpu_us_per_exchange"][k] for r in runs), 1)
                                             for k in runs[0]["cpu_us_per_exchange"]}
    return out


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


def vsock_section(result):
    """The vsock section: figures if measured, else what is missing."""
    v = result.get("vsock")
    if not v or v.get("status") != "measured":
        return """## virtio-vsock — not measured yet

| figure | Engram | ceiling / peer | status |
|---|---|---|---|
| round trip latency p50 / p99 | — | Unix-socket echo on the host | **not measured yet** |
| stream throughput | — | Unix-socket echo on the host | **not measured yet** |
| `engram restore --memory map` → first vsock echo (target ≤ 30 ms) | — | — | **not measured yet** |
"""
    lat, st, r = v["latency"], v["stream"], v["restore_to_first_echo"]
    med = lambda d, k: d[k]["median"]
    e, h = lat["engram"], lat["host"]
    echo_ms = med(r, "spawn_to_echo_ms")
    target = "met" if echo_ms <= 30 else "not met"
    standby_rows = ""
    if v.get("standby_restore_to_first_echo"):
        sb = v["standby_restore_to_first_echo"]
        standby_rows = "".join(
            f"| {label} | {'**' if key == 'request_to_echo_ms' else ''}{med(sb, key):.{digits}f} ms{'**' if key == 'request_to_echo_ms' else ''} | "
            f"{sb[key]['min']:.{digits}f} ms | {sb[key]['max']:.{digits}f} ms |\n"
            for label, key, digits in (
                (f"standby VMM (`engram standby --vsock …`, made ready first; {v.get('standby_date', v.get('date'))}): `PUT /vm/restore` → first vsock echo back "
                 f"(target ≤ 30 ms: **{'met' if med(sb, 'request_to_echo_ms') <= 30 else 'not met'}**)", "request_to_echo_ms", 1),
                ("standby VMM's own request → vCPUs running", "restore_ms", 2),
                ("standby: request → `OK` (the guest accepted)", "request_to_ok_ms", 1)))
    poll_row = ""
    if "engram_poll" in lat:
        p = lat["engram_poll"]
        poll_row = (f"| round trip, {v['exchange_bytes']} B, `virtio opt <vsock> poll 1` ({v['poll_exchanges_per_run']} per run) | "
                    f"{med(p, 'p50_us'):,.0f} / {med(p, 'p99_us'):,.0f} µs | {med(h, 'p50_us'):.1f} / {med(h, 'p99_us'):.1f} µs | "
                    f"{med(p, 'p50_us') / med(h, 'p50_us'):,.0f}× / {med(p, 'p99_us') / med(h, 'p99_us'):,.0f}× slower |\n")
    cpu = e.get("cpu_us_per_exchange_median", {})
    runs = v["runs"]
    def joined(items, key, spec, key2=None):
        return ", ".join(f"{x[key]:{spec}}" + (f"/{x[key2]:{spec}}" if key2 else "") for x in items)

    all_runs = [f"- latency p50/p99 (µs), Engram: {joined(runs['engram'], 'p50_us', '.0f', 'p99_us')}; "
                f"host echo: {joined(runs['host'], 'p50_us', '.1f', 'p99_us')}"]
    if runs.get("engram_poll"):
        all_runs.append(f"- latency p50/p99 (µs), Engram with poll 1: {joined(runs['engram_poll'], 'p50_us', '.0f', 'p99_us')}")
    all_runs.append(f"- stream (MB/s), Engram: {joined(runs['engram_stream'], 'mb_s', '.1f')}; host echo: {joined(runs['host_stream'], 'mb_s', '.0f')}")
    all_runs.append(f"- restore → first echo (ms): {joined(v['restore_runs'], 'spawn_to_echo_ms', '.1f')}; "
                    f"\"restored … in X ms\": {joined(v['restore_runs'], 'restore_ms', 'g')}")
    all_runs = "\n".join(all_runs)
    findings = ("\n" + v["findings"].strip() + "\n") if v.get("findings") else ""
    return f"""## virtio-vsock (Engram only)

Measured by `bench/devices.py --parts vsock` on {v['date']}, Engram at commit {v['commit']} ({build_note(v['engram_binary'])}),
host load average {v['load_average']['start']} at the start, {v['load_average']['end']} at the end; {v['rounds']} round(s), medians
over rounds; the run took {v.get('bench_seconds', '?')} s.{' **Quick run** (`--quick`): not the committed figures.' if v['quick'] else ''}
**QEMU is not in this section**: it has no vsock peer on this host (no vhost-vsock), so the ceiling is a
Unix-socket echo on the host (a Python process, one thread per connection, answering the same `CONNECT`
handshake) driven by the same client code.

- **Set-up**: `engram run` of the test kernel (256 MiB, 1 vCPU, `cpus=1`) with `--vsock {VSOCK_CID},PATH`; the guest runs
  `vsock listen {VSOCK_PORT}` (the test kernel's echo server, serviced from its idle loop after each device interrupt).
  A host client connects to PATH, writes `CONNECT {VSOCK_PORT}\\n`, reads `OK <hostport>\\n` (Firecracker's protocol), then streams.
- **Round trip**: one connection per run, {v['exchanges_per_run']} exchanges of {v['exchange_bytes']} bytes (send, then read all of them
  back), each timed on the host with `time.perf_counter_ns`, after 50 untimed ones; p50 and p99 (nearest rank) per
  run, then the median over rounds. The driver's default *interrupt* mode. The driver's `poll` option does not
  make the listener spin: it only suppresses the device's interrupts, so the background echo server is then
  serviced once per 10 ms timer tick; its row shows that, it is not a fast path.
- **Stream**: {v['stream_bytes'] // MIB} MiB of random bytes through one connection, sent in 64 KiB writes by one thread while
  another reads the echo; from the first write to the last byte back; the bytes are compared. MB/s = 10^6 bytes/s.
- **Restore → first echo**: a snapshot (`engram snapshot API SNAP`) of that VM taken right after `vsock listen`
  (no connection open), the VM then stopped after the runs above; per round `engram restore SNAP --memory map
  --vsock {VSOCK_CID},PATH2` (a fresh PATH2) is spawned and a host client tries to connect to PATH2 every 0.2 ms until
  the socket exists and `CONNECT` is answered `OK`, then sends 64 bytes; the time is from spawning the process
  to those bytes coming back. The snapshot file is in the host page cache (warm). "restored … in X ms" is the
  VMM's own stderr line (its work from the start of the command until the vCPUs run).

| figure | Engram | host Unix-socket echo (ceiling) | Engram ÷ ceiling |
|---|---|---|---|
| round trip, {v['exchange_bytes']} B, p50 / p99 (interrupt mode) | **{med(e, 'p50_us'):,.0f} / {med(e, 'p99_us'):,.0f} µs** | {med(h, 'p50_us'):.1f} / {med(h, 'p99_us'):.1f} µs | {med(e, 'p50_us') / med(h, 'p50_us'):,.0f}× / {med(e, 'p99_us') / med(h, 'p99_us'):,.0f}× slower |
{poll_row}| stream, {v['stream_bytes'] // MIB} MiB echoed through one connection | **{med(st['engram'], 'mb_s'):,.1f} MB/s** | {med(st['host'], 'mb_s'):,.0f} MB/s | {med(st['engram'], 'mb_s') / med(st['host'], 'mb_s'):.3f} |

| restore (`--memory map`, {v['restore_rounds']} rounds) | median | min | max |
|---|---|---|---|
| spawn → first vsock echo back (target ≤ 30 ms: **{target}**) | **{echo_ms:.1f} ms** | {r['spawn_to_echo_ms']['min']:.1f} ms | {r['spawn_to_echo_ms']['max']:.1f} ms |
| VMM's "restored … in X ms" | {med(r, 'restore_ms'):.2f} ms | {r['restore_ms']['min']:.2f} ms | {r['restore_ms']['max']:.2f} ms |
| spawn → the "restored" line read | {med(r, 'spawn_to_restored_line_ms'):.1f} ms | {r['spawn_to_restored_line_ms']['min']:.1f} ms | {r['spawn_to_restored_line_ms']['max']:.1f} ms |
| spawn → PATH2 accepts a connection | {med(r, 'spawn_to_connect_ms'):.1f} ms | {r['spawn_to_connect_ms']['min']:.1f} ms | {r['spawn_to_connect_ms']['max']:.1f} ms |
| spawn → `OK` (the guest accepted) | {med(r, 'spawn_to_ok_ms'):.1f} ms | {r['spawn_to_ok_ms']['min']:.1f} ms | {r['spawn_to_ok_ms']['max']:.1f} ms |
| for scale: spawn → `engram --help` exits (starting the process alone, no VM) | {med(r, 'help_exit_ms'):.1f} ms | {r['help_exit_ms']['min']:.1f} ms | {r['help_exit_ms']['max']:.1f} ms |
{standby_rows}
The binary links the Swift runtime {v.get('swift_runtime', 'unknown')}ally{' (`swift build -c release` without `--static-swift-stdlib`, which bench/run.sh uses and which starts about 3 ms sooner)' if v.get('swift_runtime') == 'dynamic' else ''}.

VMM CPU per interrupt-mode exchange (median, µs, from schedstat): vCPU thread {num(cpu.get('vcpu'), '.1f')} (runnable but waiting
{num(cpu.get('vcpu_wait'), '.1f')}), `virtio-io` thread {num(cpu.get('io'), '.1f')} (waiting {num(cpu.get('io_wait'), '.1f')}), other {num(cpu.get('other'), '.1f')}.
The guest's counters at the end: `{v['guest_stats']}`.
{findings}
All runs:

{all_runs}
"""


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
    blk_notes = (result["blk_notes"].strip() + "\n\n") if result.get("blk_notes") else ""
    v = result.get("vsock") or {}
    vsock_target = ("not measured yet" if v.get("status") != "measured" else
                    f"{'met' if v['restore_to_first_echo']['spawn_to_echo_ms']['median'] <= 30 else 'not met'} "
                    f"({v['restore_to_first_echo']['spawn_to_echo_ms']['median']:.1f} ms, median)" +
                    (f"; from a standby VMM (`PUT /vm/restore`, timed from the request): "
                     f"{'met' if v['standby_restore_to_first_echo']['request_to_echo_ms']['median'] <= 30 else 'not met'} "
                     f"({v['standby_restore_to_first_echo']['request_to_echo_ms']['median']:.1f} ms)" if v.get("standby_restore_to_first_echo") else ""))
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
    return f"""# Devices: Engram vs QEMU microvm (virtio-blk, virtio-rng), and Engram's virtio-vsock

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

{blk_notes}Target: block IOPS and throughput at least QEMU's (Engram / QEMU ≥ 1.0): **{met}**.
Target: `engram restore --memory map` → first vsock echo ≤ 30 ms: **{vsock_target}** (see virtio-vsock).

## virtio-blk

| driver mode | workload | Engram | QEMU | Engram / QEMU | requests per run | run time (Engram / QEMU) |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

## virtio-rng

| driver mode | command | Engram | QEMU | Engram / QEMU | time (Engram / QEMU) |
|---|---|---|---|---|---|
{chr(10).join(rng_rows)}

{vsock_section(result)}
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
    parser.add_argument("--parts", default="blk,vsock",
                        help="what to measure: blk (virtio-blk and virtio-rng beside QEMU), vsock, or both; a part not measured "
                             "keeps its figures from OUTPUT.json")
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
    parser.add_argument("--vsock-exchanges", type=int, default=2000, help="timed round trips per latency run")
    parser.add_argument("--vsock-size", type=int, default=64, help="bytes per round trip")
    parser.add_argument("--vsock-poll-exchanges", type=int, default=100,
                        help="round trips per run with `virtio opt <vsock> poll 1` (0: skip)")
    parser.add_argument("--vsock-mib", type=int, default=64, help="MiB echoed per stream run")
    parser.add_argument("--restore-rounds", type=int, default=15, help="restores timed to the first vsock echo")
    parser.add_argument("--findings", help="a Markdown file whose text goes into the report as findings")
    parser.add_argument("--vsock-findings", help="a Markdown file whose text goes into the vsock section as its discussion")
    parser.add_argument("--report-only", action="store_true", help="rewrite OUTPUT.md from OUTPUT.json, run nothing")
    args = parser.parse_args()
    args.engram = os.path.abspath(args.engram)
    parts = set(args.parts.split(","))
    if not parts or parts - {"blk", "vsock", "vsock-standby"}:
        parser.error(f"--parts: blk, vsock, blk,vsock or vsock-standby (only the standby restore rows), not {args.parts!r}")
    if args.report_only:
        with open(args.output + ".json") as saved:
            result = json.load(saved)
        add_findings(result, args)
        if args.findings or args.vsock_findings:
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
        args.vsock_exchanges, args.vsock_mib = min(args.vsock_exchanges, 300), min(args.vsock_mib, 4)
        args.vsock_poll_exchanges, args.restore_rounds = min(args.vsock_poll_exchanges, 20), min(args.restore_rounds, 3)
    previous = None
    if parts != {"blk", "vsock"}:
        with open(args.output + ".json") as saved:
            previous = json.load(saved)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_start = " ".join(open("/proc/loadavg").read().split()[:3])
    tmp = tempfile.mkdtemp(prefix="engram-devices-", dir=args.tmpdir)
    source = os.path.realpath(args.engram)
    built = datetime.fromtimestamp(os.path.getmtime(source), timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    build = "debug" if "/debug/" in source else "release" if "/release/" in source else "unknown"
    measured, vsock, standby = {}, None, None
    try:
        args.engram = os.path.join(tmp, "engram")  # a copy: a build that replaces the binary mid-run changes nothing
        shutil.copy2(source, args.engram)
        fs = subprocess.run(["df", "--output=fstype,source", tmp], capture_output=True, text=True).stdout.split("\n")[1].split()
        if "blk" in parts:
            measured = measure(args, tmp)
        if "vsock" in parts:
            vsock_start = time.monotonic()
            vsock = measure_vsock(args, tmp)
            vsock["bench_seconds"] = round(time.monotonic() - vsock_start, 1)
        if "vsock-standby" in parts:
            standby = measure_vsock_standby(args, tmp)
    finally:
        kill_all()
        shutil.rmtree(tmp, ignore_errors=True)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_end = " ".join(open("/proc/loadavg").read().split()[:3])
    if "blk" in parts:
        qemu_version = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        result = {
            "date": now,
            "host": f"{platform.node()} ({os.cpu_count()} CPUs, kernel {platform.release()})",
            "commit": git_commit(),
            "engram_binary": {"path": source, "built": built, "build": build},
            "machine_notes": "KVM here is PVM (kvm_pvm, no hardware virtualization): guest ring 0 is emulated, ring 3 runs "
                             "natively; 2 cores, 24 GiB, shared with other work (noisy), hence medians.",
            "qemu_version": qemu_version.replace("QEMU emulator version ", ""),
            "directory_note": f"{args.tmpdir} ({fs[0]} on {fs[1]})",
            "load_average": {"start": load_start, "end": load_end},
            "quick": args.quick, "rounds": args.rounds, "seconds_per_run": args.seconds, "image_mib": args.image_mib,
            "rng_option": RNG_OPTION,
            **measured,
        }
        result["vsock"] = previous["vsock"] if previous else None
    else:
        result = previous
    if standby is not None and vsock is None:
        result["vsock"].update(standby, standby_date=now, standby_commit=git_commit())
    if vsock is not None:
        result["vsock"] = {"status": "measured", "date": now, "commit": git_commit(), "engram_binary": {"path": source, "built": built, "build": build},
                           "load_average": {"start": load_start, "end": load_end}, "quick": args.quick, **vsock}
    add_findings(result, args)
    with open(args.output + ".json", "w") as out:
        json.dump(result, out, indent=2)
        out.write("\n")
    with open(args.output + ".md", "w") as out:
        out.write(report(result))
    print(report(result))


def add_findings(result, args):
    if args.findings:
        with open(args.findings) as f:
            result["findings"] = "\n" + f.read().strip() + "\n"
    if args.vsock_findings and result.get("vsock"):
        with open(args.vsock_findings) as f:
            result["vsock"]["findings"] = f.read().strip()


if __name__ == "__main__":
    sys.exit(main())
