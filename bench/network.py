#!/usr/bin/env python3
"""virtio-net: Engram beside QEMU microvm, in one run, with the same test-kernel driver, the same
namespace and the same tap set-up.

The bench makes a network namespace of its own (a unique name) with a bridge holding the host's
address and one tap per VM (`ip -n NS tuntap add NAME mode tap vnet_hdr`), moves itself into it
(setns), so every VMM and every host-side socket it opens lives there, and deletes it at the end
(also on an error or ^C). The host's own interfaces are never touched.

Both VMMs boot the test kernel once (1 GiB, 1 vCPU, `cpus=1 ip=A.B.C.D/24 udp_echo=7777`), each on
its own tap and address (Engram `--net tap=T,mac=M`; QEMU `-netdev tap,...,vhost=off -device
virtio-net-device,mac=M`). The host has a permanent neighbour entry for each guest, so no figure
waits on the host's ARP timers. Then --rounds rounds, the VMM order alternating per round, of:

- round trips: one datagram in flight, --exchanges exchanges host → guest echo port → host, each
  timed with perf_counter_ns (after 50 untimed ones), p50 and p99 per run; 64 and 1472 bytes;
- host → guest, windowed: --window datagrams of 64 bytes in flight for --seconds, one more sent per
  echo back (a window refilled after 20 ms of silence): echoes per second;
- host → guest, as fast as the host can: non-blocking sends for --seconds, echoes drained between
  bursts: sent per second and answered per second (what the guest took and answered);
- guest → host: `net flood 0 HOST PORT 64 COUNT` in the guest (COUNT sized by an unrecorded
  calibration flood so a run takes about --seconds), a host socket counting what arrives:
  datagrams per second from the first to the last received;
each with the VMM's CPU per packet by thread (vCPU, I/O) from /proc/PID/task/TID/schedstat.

Restore to first answer: a few echoes, then Engram's `engram snapshot API SNAP` (the echo service
running) and QEMU's `migrate exec:cat > FILE` of its running guest; both source VMs stop. Then
--restore-rounds rounds (after one unrecorded warm-up each), the order rotating per round, of
`engram restore SNAP --memory map`, `--memory lazy`, `restore tcp://127.0.0.1:PORT --memory lazy`
from `engram serve SNAP`, the same three into standby VMMs, a standby `tcp://` restore prefetching a
working set recorded once before the rounds, and QEMU with the same command line plus `-incoming "exec:cat FILE"` (it
starts the guest on its own once the file is read: the source was running), each onto a second tap
(Engram keeps the saved MAC; QEMU's command line gives the same one). A host client in its own
process has been sending one 64-byte datagram per millisecond to the guest's echo port before the
spawn; the figure is spawn → that client's first echo.

--parts picks traffic (the rounds above), restore, or both (the default); a part not run keeps its
figures from OUTPUT.json. Writes docs/results/network.md and docs/results/network.json.
"""
import argparse, json, math, multiprocessing, os, platform, re, secrets, select, shutil, signal, socket, statistics, struct, subprocess, sys, tempfile, time
from datetime import datetime, timezone

from benchlib import QMP, Child, Namespace, kill_all, restore_answer, run_json, standby_restore, summary, udp_socket
from devices import VM, build_note, field, git_commit, percentile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL = os.path.join(ROOT, "guest/build/engram-test-kernel.elf")
ECHO_PORT, SINK_PORT = 7777, 9000
RESTORED_LINE = re.compile(r"restored .* in ([\d.]+) ms")
RESTORE_MODES = ("map", "lazy", "tcp", "standby-map", "standby-lazy", "standby-tcp", "standby-tcp-ws", "qemu")
WORKING_SET_LINE = re.compile(r"recorded a working set of (\d+) pages")
VMMS = ("engram", "qemu")
MIB = 1 << 20


def log(text):
    print(text, file=sys.stderr, flush=True)


# ---- the namespace ---------------------------------------------------------------------------------

# ---- host-side traffic -----------------------------------------------------------------------------

def round_trips(address, size, count, warmup=50, timeout=1.0):
    """`count` exchanges of `size` bytes, one in flight, each timed (ns); lost ones are sent again, not timed."""
    s = udp_socket()
    s.connect((address, ECHO_PORT))
    s.settimeout(timeout)
    times, lost = [], 0
    padding = os.urandom(max(0, size - 8))
    try:
        for index in range(warmup + count):
            payload = struct.pack("<Q", index) + padding
            while True:
                start = time.perf_counter_ns()
                s.send(payload)
                try:
                    while True:
                        back = s.recv(2048)
                        if back[:8] == payload[:8]:
                            break  # an answer to an earlier, timed-out try is skipped
                    elapsed = time.perf_counter_ns() - start
                    break
                except (socket.timeout, ConnectionRefusedError):
                    lost += 1
            if back != payload:
                raise RuntimeError(f"echo {index}: the bytes differ")
            if index >= warmup:
                times.append(elapsed)
    finally:
        s.close()
    return {"p50_us": percentile(times, 50) / 1000, "p99_us": percentile(times, 99) / 1000,
            "mean_us": statistics.mean(times) / 1000, "max_us": max(times) / 1000, "lost": lost}


def drain(s):
    n = 0
    while True:
        try:
            s.recv(2048)
            n += 1
        except (BlockingIOError, ConnectionRefusedError):
            return n


def windowed(address, size, seconds, window, stall=0.02):
    """`window` datagrams in flight for `seconds`: one more sent per echo back; after `stall` seconds
    without an echo the window is refilled (datagrams the guest dropped). Echoes per second."""
    s = udp_socket()
    s.connect((address, ECHO_PORT))
    s.setblocking(False)
    payload = bytes(size)
    answered = sent = refills = 0
    try:
        for _ in range(window):
            s.send(payload)
            sent += 1
        start = time.perf_counter()
        end = start + seconds
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            ready, _, _ = select.select([s], [], [], min(stall, end - now))
            if not ready:
                refills += 1
                for _ in range(window):
                    s.send(payload)
                    sent += 1
                continue
            got = drain(s)
            answered += got
            for _ in range(got):
                s.send(payload)
                sent += 1
        elapsed = time.perf_counter() - start
        time.sleep(0.05)
        drain(s)
    finally:
        s.close()
    return {"answered_pps": answered / elapsed, "sent_pps": sent / elapsed, "refills": refills, "seconds": elapsed}


def blast(address, size, seconds):
    """Non-blocking sends as fast as the host can for `seconds`, echoes drained between bursts of 64."""
    s = udp_socket()
    s.connect((address, ECHO_PORT))
    s.setblocking(False)
    payload = bytes(size)
    sent = answered = full = 0
    try:
        start = time.perf_counter()
        end = start + seconds
        while time.perf_counter() < end:
            for _ in range(64):
                try:
                    s.send(payload)
                    sent += 1
                except BlockingIOError:
                    full += 1
                    break
            answered += drain(s)
        elapsed = time.perf_counter() - start
        deadline = time.perf_counter() + 0.1  # echoes of the last datagrams, still counted
        while time.perf_counter() < deadline:
            answered += drain(s)
            time.sleep(0.005)
    finally:
        s.close()
    return {"sent_pps": sent / elapsed, "answered_pps": answered / elapsed, "answered_share": answered / sent if sent else None,
            "send_buffer_full": full, "seconds": elapsed}


def sink(host, port, pipe, idle=0.5, limit=120):
    """Counts datagrams arriving at HOST:PORT: (count, first, last arrival) once `idle` s pass without one."""
    s = udp_socket()
    s.bind((host, port))
    s.settimeout(0.05)
    pipe.send("ready")
    count, first, last, started = 0, None, None, time.monotonic()
    while time.monotonic() - started < limit:
        try:
            s.recv(2048)
        except socket.timeout:
            if last is not None and time.monotonic() - last > idle or pipe.poll():
                break
            continue
        last = time.monotonic()
        first = first or last
        count += 1
    pipe.send({"count": count, "first": first, "last": last})


def flood(vm, host, count, port=SINK_PORT):
    """`net flood 0 HOST PORT 64 COUNT` in the guest; a host socket in another process counts arrivals."""
    parent, child = multiprocessing.Pipe()
    receiver = multiprocessing.get_context("fork").Process(target=sink, args=(host, port, child), daemon=True)
    receiver.start()
    try:
        if not parent.poll(10):
            raise RuntimeError("the host sink did not start")
        parent.recv()
        before = vm.thread_cpu()
        seconds, answer = vm.command(f"net flood 0 {host} {port} 64 {count}", "NET FLOOD", timeout=300)
        after = vm.thread_cpu()
        if not parent.poll(30):
            raise RuntimeError("the host sink did not finish")
        got = parent.recv()
    finally:
        receiver.join(5)
        if receiver.is_alive():
            receiver.kill()
    sent = int(field(answer, "sent"))
    span = (got["last"] - got["first"]) if got["count"] > 1 else None
    return {"sent": sent, "received": got["count"], "command_seconds": seconds, "sent_pps": sent / seconds,
            "received_pps": (got["count"] - 1) / span if span else None, "span_seconds": span,
            "cpu": cpu_per(before, after, max(1, sent))}


def cpu_per(before, after, packets):
    return {k: (after[k] - before[k]) / 1000 / packets for k in ("vcpu", "io", "other", "vcpu_wait", "io_wait")}


def with_cpu(vm, run, packets_key):
    before = vm.thread_cpu()
    result = run()
    after = vm.thread_cpu()
    packets = result[packets_key] * result["seconds"]
    result["cpu"] = cpu_per(before, after, max(1, packets))
    return result


# ---- restore to first answer -------------------------------------------------------------------------

def ticker(address, pipe, period=0.001, limit=30.0):
    """The host client: one 64-byte datagram (sequence number, send time) to the guest's echo port every
    `period` s; says `ready` after the first 5, then reports the first echo (arrival time, its sequence
    number and send time) and ends. Stops on any message from the bench."""
    s = udp_socket()
    s.setblocking(False)
    padding = bytes(48)
    sequence, started = 0, time.monotonic()
    next_send = started
    while time.monotonic() - started < limit:
        now = time.monotonic()
        if now >= next_send:
            try:
                s.sendto(struct.pack("<Qd", sequence, now) + padding, (address, ECHO_PORT))
            except OSError:
                pass  # nothing to reach yet
            sequence += 1
            next_send = max(next_send + period, now)
            if sequence == 5:
                pipe.send("ready")
        ready, _, _ = select.select([s], [], [], max(0.0, next_send - time.monotonic()))
        if ready:
            try:
                back = s.recv(2048)
            except OSError:
                continue
            arrived = time.monotonic()
            number, sent_at = struct.unpack("<Qd", back[:16])
            pipe.send({"echoed": arrived, "sequence": number, "sent_at": sent_at, "sent": sequence})
            return
        if pipe.poll():
            return
    pipe.send({"error": f"no echo within {limit} s", "sent": sequence})


class Restorer:
    def __init__(self, args, network, tmp, snapshot, migration, secret, url, addresses, url_with_working_set):
        self.args, self.network, self.tmp = args, network, tmp
        self.snapshot, self.migration, self.secret, self.url, self.addresses = snapshot, migration, secret, url, addresses
        self.url_with_working_set = url_with_working_set
        self.help_exit_ms = []

    def command(self, mode):
        args, taps = self.args, self.network.taps
        if mode.startswith("standby"):
            return [args.engram, "standby", "--memory", args.memory, "--cpus", "1", "--net", f"tap={taps['eb']}",
                    "--secret-file", self.secret, "--api-socket", os.path.join(self.tmp, "standby.sock")]
        if mode == "qemu":
            return qemu_command(args, taps["qb"], self.addresses["qemu"], QEMU_MAC) + ["-incoming", f"exec:cat {self.migration}"]
        if mode == "record":  # the working set of a restore's first answer, stored beside the second server's copy
            return [args.engram, "restore", self.url_with_working_set, "--memory", "lazy", "--net", f"tap={taps['eb']}",
                    "--secret-file", self.secret, "--record-working-set", "1"]
        source = self.url if mode == "tcp" else self.snapshot
        command = [args.engram, "restore", source, "--memory", "map" if mode == "map" else "lazy", "--net", f"tap={taps['eb']}"]
        return command + (["--secret-file", self.secret] if mode == "tcp" else [])

    def one(self, mode):
        address = self.addresses["qemu" if mode == "qemu" else "engram"]
        parent, child_end = multiprocessing.Pipe()
        client = multiprocessing.get_context("fork").Process(target=ticker, args=(address, child_end), daemon=True)
        client.start()
        vm = None
        try:
            if not parent.poll(10):
                raise RuntimeError("the host client did not start")
            parent.recv()
            vm = Child(self.command(mode), name=f"restore {mode}")
            begun, connection = vm.started, None
            if mode.startswith("standby"):
                # Made ready (not timed), then the clock starts at the request.
                vm.wait_for(re.compile(rb"control API on "), 30, stream="err")
                kind = mode.split("-")[1]
                url = self.url_with_working_set if mode == "standby-tcp-ws" else self.url
                body = {"snapshot": url if kind == "tcp" else self.snapshot, "memory": "map" if kind == "map" else "lazy"}
                connection, begun = standby_restore(os.path.join(self.tmp, "standby.sock"), body)
            deadline = begun + 30
            while not parent.poll(0):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{mode}: no echo within 30 s: {vm.tail()}")
                vm.pump(0.002)
                if vm.process.poll() is not None and not parent.poll(0.2):
                    raise RuntimeError(f"{mode}: the VMM exited with {vm.process.returncode}: {vm.tail()}")
            got = parent.recv()
            if "error" in got:
                raise RuntimeError(f"{mode}: {got['error']}: {vm.tail()}")
            result = {"spawn_to_echo_ms": (got["echoed"] - begun) * 1000,
                      "echoed_datagram_sent_after_spawn_ms": (got["sent_at"] - begun) * 1000}
            if connection:
                answered, answer = restore_answer(connection)
                result["restore_ms"] = answer["milliseconds_to_running"]
                result["request_to_answer_ms"] = (answered - begun) * 1000
            elif mode != "qemu":
                vm.pump_until(lambda: any(RESTORED_LINE.search(line) for _, line in vm.stderr_lines), 5, "the restored line")
                when, line = next((t, line) for t, line in vm.stderr_lines if RESTORED_LINE.search(line))
                result["restore_ms"] = float(RESTORED_LINE.search(line).group(1))
                result["spawn_to_restored_line_ms"] = (when - vm.started) * 1000
            if mode == "record":
                vm.pump_until(lambda: any(WORKING_SET_LINE.search(line) for _, line in vm.stderr_lines), 10, "the recorded working set")
                result["working_set_pages"] = next(int(WORKING_SET_LINE.search(line).group(1)) for _, line in vm.stderr_lines if WORKING_SET_LINE.search(line))
            return result
        finally:
            try:
                parent.send("stop")
            except OSError:
                pass  # it already ended
            client.join(5)
            if client.is_alive():
                client.kill()
            if vm:
                vm.stop()

    def rounds(self):
        samples = {mode: [] for mode in RESTORE_MODES}
        failures = []
        for round_index in range(-1, self.args.restore_rounds):  # round -1: one unrecorded warm-up each
            shift = max(round_index, 0) % len(RESTORE_MODES)
            order = RESTORE_MODES[shift:] + RESTORE_MODES[:shift]
            for mode in order:
                try:
                    run = self.one(mode)
                except RuntimeError as error:
                    failures.append({"mode": mode, "round": round_index, "error": str(error)[-600:]})
                    log(f"   restore {mode}: {error}")
                    continue
                if round_index >= 0:
                    samples[mode].append(run)
            if round_index >= 0:
                begun = time.monotonic()  # for scale: starting the process alone, no VM
                subprocess.run([self.args.engram, "--help"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
                self.help_exit_ms.append((time.monotonic() - begun) * 1000)
                log(f"   restore round {round_index + 1}/{self.args.restore_rounds}: " +
                    ", ".join(f"{m} {samples[m][-1]['spawn_to_echo_ms']:.1f} ms" for m in order if samples[m]))
        return samples, failures


# ---- the VMs ---------------------------------------------------------------------------------------

ENGRAM_MAC, QEMU_MAC = "52:54:00:00:00:02", "52:54:00:00:00:03"


def guest_cmdline(address):
    return f"cpus=1 ip={address}/24 udp_echo={ECHO_PORT}"


def qemu_command(args, tap, address, mac, qmp=None):
    command = ["qemu-system-x86_64", "-M", "microvm,acpi=off", "-accel", "kvm", "-m", args.memory, "-smp", "1",
               "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-name", "qemu,debug-threads=on",
               "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-global", "virtio-mmio.force-legacy=false",
               "-kernel", KERNEL, "-append", guest_cmdline(address),
               "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no,vhost=off", "-device", f"virtio-net-device,netdev=n0,mac={mac}"]
    return command + (["-qmp", f"unix:{qmp},server=on,wait=off"] if qmp else [])


def traffic_round(vm, address, args, flood_count):
    run = {}
    run["rtt_64"] = round_trips(address, 64, args.exchanges)
    run["rtt_1472"] = round_trips(address, 1472, args.exchanges)
    run["h2g_window"] = with_cpu(vm, lambda: windowed(address, 64, args.seconds, args.window), "answered_pps")
    run["h2g_blast"] = with_cpu(vm, lambda: blast(address, 64, args.seconds), "answered_pps")
    run["g2h_flood"] = flood(vm, args.network.host, flood_count)
    return run


def measure(args, tmp, parts):
    network = args.network
    addresses = {"engram": f"{network.subnet}.2", "qemu": f"{network.subnet}.3"}
    network.neighbour(addresses["engram"], ENGRAM_MAC)
    network.neighbour(addresses["qemu"], QEMU_MAC)
    api, qmp_path = os.path.join(tmp, "api.sock"), os.path.join(tmp, "qmp.sock")
    snapshot, migration = os.path.join(tmp, "vm.snap"), os.path.join(tmp, "qemu.mig")
    engram = VM("engram", [args.engram, "run", "--kernel", KERNEL, "--memory", args.memory, "--cpus", "1",
                           "--cmdline", guest_cmdline(addresses["engram"]), "--net", f"tap={network.taps['ea']},mac={ENGRAM_MAC}",
                           "--api-socket", api])
    qemu = VM("qemu", qemu_command(args, network.taps["qa"], addresses["qemu"], QEMU_MAC, qmp_path))
    vms = (engram, qemu)
    result = {"commands": {vm.name: vm.child.command for vm in vms}, "addresses": addresses, "host_address": network.host}
    started = time.monotonic()
    try:
        for vm in vms:
            vm.boot()
            vm.discover(("net",))
            _, listing = vm.command("net", "NET dev=0")
            result.setdefault("net_listing", {})[vm.name] = listing
            if field(listing, "link") != "up" or field(listing, "status") != "ok":
                raise RuntimeError(f"{vm.name}: {listing}")
        for vm in vms:  # the echo service answers (and the VMs are warm)
            round_trips(addresses[vm.name], 64, 20, warmup=0)
        log(f"== both VMs up, echoing ({time.monotonic() - started:.1f} s)")
        if "traffic" in parts:
            calibration = {}
            for vm in vms:
                calibration[vm.name] = flood(vm, network.host, 5000 if args.quick else 20000)["received_pps"] or 1000
            rate = math.sqrt(calibration["engram"] * calibration["qemu"])
            flood_count = max(2000, int(round(rate * args.seconds / 1000)) * 1000)
            log(f"   calibration flood: received/s {({k: round(v) for k, v in calibration.items()})} -> {flood_count} datagrams")
            samples = {vm.name: [] for vm in vms}
            for round_index in range(args.rounds):
                order = vms if round_index % 2 == 0 else vms[::-1]
                for vm in order:
                    samples[vm.name].append(traffic_round(vm, addresses[vm.name], args, flood_count))
                log(f"   traffic round {round_index + 1}/{args.rounds} ({time.monotonic() - started:.0f} s): " + "; ".join(
                    f"{name} rtt64 {s[-1]['rtt_64']['p50_us']:.0f}/{s[-1]['rtt_64']['p99_us']:.0f} µs, "
                    f"h2g {s[-1]['h2g_window']['answered_pps']:.0f}/s (blast sent {s[-1]['h2g_blast']['sent_pps']:.0f} "
                    f"answered {s[-1]['h2g_blast']['answered_pps']:.0f}), g2h {s[-1]['g2h_flood']['received_pps'] or 0:.0f}/s"
                    for name, s in samples.items()))
            result["traffic"] = {"flood_calibration_pps": calibration, "flood_count": flood_count, "runs": samples,
                                 "summary": summarize_traffic(samples)}
        for vm in vms if "traffic" in parts else ():  # the counters of the traffic rounds
            _, stats = vm.command("net stats 0", "NET STATS")
            result.setdefault("guest_stats", {})[vm.name] = stats
        if "restore" not in parts:
            return result
        # The snapshot and the migration file, taken right after a few echoes, the echo service running.
        round_trips(addresses["engram"], 64, 5, warmup=0)
        answer = run_json([args.engram, "snapshot", api, snapshot])
        result["snapshot"] = {k: answer.get(k) for k in ("bytes_written", "duration_seconds", "file_size_in_bytes")}
        round_trips(addresses["qemu"], 64, 5, warmup=0)
        qmp = QMP(qmp_path)
        try:
            qmp.command("migrate-set-parameters", **{"max-bandwidth": 1 << 40})
            migrate_started = time.monotonic()
            qmp.command("migrate", uri=f"exec:cat > {migration}")
            while True:
                info = qmp.command("query-migrate")
                if info.get("status") == "completed":
                    break
                if info.get("status") in ("failed", "cancelled"):
                    raise RuntimeError(f"QEMU migration {info.get('status')}: {info.get('error-desc', '')}")
                if time.monotonic() - migrate_started > 300:
                    raise RuntimeError("QEMU migration did not complete")
                time.sleep(0.005)
        finally:
            qmp.close()
        result["migration"] = {"file_size_in_bytes": os.path.getsize(migration), "seconds": round(time.monotonic() - migrate_started, 3),
                               "total_time_ms": info.get("total-time"), "downtime_ms": info.get("downtime")}
        log(f"   snapshot {result['snapshot']}, QEMU migration file {result['migration']}")
    finally:
        for vm in vms:
            vm.stop()

    secret = os.path.join(tmp, "secret")
    with open(os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(secrets.token_hex(32))
    # A second page server serves a copy of the snapshot, beside which a working set is recorded
    # once (the first server's copy keeps none, so its rows fetch nothing ahead).
    with_working_set = os.path.join(tmp, "vm-ws.snap")
    shutil.copyfile(snapshot, with_working_set)
    servers = [Child([args.engram, "serve", path, "--listen", "127.0.0.1:0", "--secret-file", secret], name="engram serve")
               for path in (snapshot, with_working_set)]
    try:
        urls = []
        for server in servers:
            _, match = server.wait_for(re.compile(rb"on 127\.0\.0\.1:(\d+)"), 30, "the page server's port", stream="err")
            urls.append(f"tcp://127.0.0.1:{int(match.group(1))}")
        restorer = Restorer(args, network, tmp, snapshot, migration, secret, urls[0], addresses, urls[1])
        recording = restorer.one("record")
        log(f"   recorded a working set of {recording['working_set_pages']} pages (spawn → first echo {recording['spawn_to_echo_ms']:.1f} ms)")
        samples, failures = restorer.rounds()
    finally:
        for server in servers:
            server.stop()
    result["restore"] = {"rounds": args.restore_rounds, "commands": {m: restorer.command(m) for m in RESTORE_MODES},
                         "working_set_recording": {"command": restorer.command("record"), **recording},
                         "runs": samples, "failures": failures, "summary": summarize_restore(samples),
                         "help_exit_ms": summary(restorer.help_exit_ms, 2),
                         "swift_runtime": "dynamic" if "libswiftCore.so" in subprocess.run(["ldd", args.engram], capture_output=True, text=True).stdout else "static"}
    return result


# ---- summaries ----------------------------------------------------------------------------------------

def med(values):
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize_traffic(samples):
    out = {}
    for name, runs in samples.items():
        entry = {}
        for size in ("64", "1472"):
            key = f"rtt_{size}"
            entry[key] = {k: summary([r[key][k] for r in runs], 1) for k in ("p50_us", "p99_us", "mean_us", "max_us")}
            entry[key]["lost"] = sum(r[key]["lost"] for r in runs)
        entry["h2g_window_answered_pps"] = summary([r["h2g_window"]["answered_pps"] for r in runs], 0)
        entry["h2g_window_refills"] = [r["h2g_window"]["refills"] for r in runs]
        entry["h2g_blast_sent_pps"] = summary([r["h2g_blast"]["sent_pps"] for r in runs], 0)
        entry["h2g_blast_answered_pps"] = summary([r["h2g_blast"]["answered_pps"] for r in runs], 0)
        entry["g2h_received_pps"] = summary([r["g2h_flood"]["received_pps"] for r in runs], 0)
        entry["g2h_sent_pps"] = summary([r["g2h_flood"]["sent_pps"] for r in runs], 0)
        entry["g2h_lost"] = [r["g2h_flood"]["sent"] - r["g2h_flood"]["received"] for r in runs]
        for key in ("h2g_window", "h2g_blast", "g2h_flood"):
            entry[f"{key}_cpu_us_per_packet"] = {k: round(med([r[key]["cpu"][k] for r in runs]), 2) for k in runs[0][key]["cpu"]}
        out[name] = entry
    e, q = out["engram"], out["qemu"]
    m = lambda d, *keys: d[keys[0]]["median"] if len(keys) == 1 else d[keys[0]][keys[1]]["median"]
    out["ratios"] = {
        "rtt_64_p50_qemu_over_engram": round(m(q, "rtt_64", "p50_us") / m(e, "rtt_64", "p50_us"), 3),
        "rtt_64_p99_qemu_over_engram": round(m(q, "rtt_64", "p99_us") / m(e, "rtt_64", "p99_us"), 3),
        "rtt_1472_p50_qemu_over_engram": round(m(q, "rtt_1472", "p50_us") / m(e, "rtt_1472", "p50_us"), 3),
        "rtt_1472_p99_qemu_over_engram": round(m(q, "rtt_1472", "p99_us") / m(e, "rtt_1472", "p99_us"), 3),
        "h2g_window_engram_over_qemu": round(m(e, "h2g_window_answered_pps") / m(q, "h2g_window_answered_pps"), 3),
        "h2g_blast_answered_engram_over_qemu": round(m(e, "h2g_blast_answered_pps") / m(q, "h2g_blast_answered_pps"), 3),
        "g2h_engram_over_qemu": round(m(e, "g2h_received_pps") / m(q, "g2h_received_pps"), 3),
    }
    return out


def summarize_restore(samples):
    out = {}
    for mode, runs in samples.items():
        if not runs:
            out[mode] = None
            continue
        out[mode] = {key: summary([r[key] for r in runs], 2) for key in runs[0]}
    qemu = out.get("qemu") and out["qemu"]["spawn_to_echo_ms"]["median"]
    for mode in RESTORE_MODES[:-1]:
        if out.get(mode) and qemu:
            out[mode]["qemu_over_this"] = round(qemu / out[mode]["spawn_to_echo_ms"]["median"], 1)
    return out


# ---- the report ----------------------------------------------------------------------------------------

def num(value, spec=".0f"):
    return "—" if value is None else f"{value:{spec}}"


def check(ok):
    return "✓" if ok else "✗"


def traffic_section(t, notes):
    if not t:
        return "## Traffic — not measured yet\n"
    s, r = t["summary"], t["summary"]["ratios"]
    e, q = s["engram"], s["qemu"]
    m = lambda d, key, sub=None: d[key]["median"] if sub is None else d[key][sub]["median"]
    rows = []
    for size in ("64", "1472"):
        key = f"rtt_{size}"
        for p in ("p50", "p99"):
            ratio = r[f"{key}_{p}_qemu_over_engram"]
            rows.append(f"| UDP round trip, {size} B, {p} | **{m(e, key, p + '_us'):,.0f} µs** | {m(q, key, p + '_us'):,.0f} µs | "
                        f"**{ratio:.2f}** {check(ratio >= 1)} |")
    for label, key, ratio in (("host → guest, 64 B, echoes/s with {w} in flight", "h2g_window_answered_pps", r["h2g_window_engram_over_qemu"]),
                              ("host → guest, 64 B, as fast as the host sends: echoes/s", "h2g_blast_answered_pps", r["h2g_blast_answered_engram_over_qemu"]),
                              ("guest → host, 64 B, `net flood`: received/s", "g2h_received_pps", r["g2h_engram_over_qemu"])):
        rows.append(f"| {label.format(w=notes['window'])} | **{m(e, key):,.0f}** | {m(q, key):,.0f} | **{ratio:.2f}** {check(ratio >= 1)} |")
    rows.append(f"| host → guest, as fast as the host sends: sent/s (the host's side) | {m(e, 'h2g_blast_sent_pps'):,.0f} | "
                f"{m(q, 'h2g_blast_sent_pps'):,.0f} | |")
    rows.append(f"| guest → host, `net flood`: queued/s in the guest (command time) | {m(e, 'g2h_sent_pps'):,.0f} | {m(q, 'g2h_sent_pps'):,.0f} | |")
    cpu_rows = []
    for key, label in (("h2g_window", f"host → guest, {notes['window']} in flight"), ("h2g_blast", "host → guest, as fast as it can"),
                       ("g2h_flood", "guest → host flood")):
        ce, cq = e[f"{key}_cpu_us_per_packet"], q[f"{key}_cpu_us_per_packet"]
        cpu_rows.append(f"| {label} | {ce['vcpu']:.1f} ({ce['vcpu_wait']:.1f}) | {ce['io']:.1f} ({ce['io_wait']:.1f}) | "
                        f"{cq['vcpu']:.1f} ({cq['vcpu_wait']:.1f}) | {cq['io']:.1f} ({cq['io_wait']:.1f}) |")
    allruns = []
    for name in VMMS:
        runs = t["runs"][name]
        allruns.append(f"- {'Engram' if name == 'engram' else 'QEMU'}: round trip 64 B p50/p99 (µs) " +
                       ", ".join(f"{x['rtt_64']['p50_us']:.0f}/{x['rtt_64']['p99_us']:.0f}" for x in runs) +
                       "; 1472 B " + ", ".join(f"{x['rtt_1472']['p50_us']:.0f}/{x['rtt_1472']['p99_us']:.0f}" for x in runs) +
                       "; windowed echoes/s " + ", ".join(f"{x['h2g_window']['answered_pps']:,.0f}" for x in runs) +
                       "; blast sent/answered per s " + ", ".join(f"{x['h2g_blast']['sent_pps']:,.0f}/{x['h2g_blast']['answered_pps']:,.0f}" for x in runs) +
                       "; flood received/s " + ", ".join(num(x['g2h_flood']['received_pps'], ",.0f") for x in runs) +
                       f"; lost round trips {e['rtt_64']['lost'] if name == 'engram' else q['rtt_64']['lost']} (64 B), "
                       f"{e['rtt_1472']['lost'] if name == 'engram' else q['rtt_1472']['lost']} (1472 B); flood datagrams lost per run " +
                       ", ".join(str(v) for v in (e if name == 'engram' else q)['g2h_lost']))
    return f"""## Traffic

| figure | Engram | QEMU | Engram ÷ QEMU (latency: QEMU's time ÷ Engram's) |
|---|---|---|---|
{chr(10).join(rows)}

CPU per packet (µs, medians; in parentheses time runnable but waiting for a CPU), from schedstat: *vCPU* is the vCPU
thread; *I/O* is Engram's `virtio-io` thread, QEMU's main loop (which moves the tap's frames with vhost off)
and its other threads.

| workload | Engram vCPU | Engram I/O | QEMU vCPU | QEMU I/O |
|---|---|---|---|---|
{chr(10).join(cpu_rows)}

All runs:

{chr(10).join(allruns)}
"""


def restore_section(r):
    if not r:
        return "## Restore to first answer — not measured yet\n"
    s = r["summary"]
    rows = []
    labels = {"map": "`engram restore SNAP --memory map`", "lazy": "`engram restore SNAP --memory lazy`",
              "tcp": "`engram restore tcp://127.0.0.1:PORT --memory lazy` (`engram serve`)",
              "standby-map": "standby VMM, `PUT /vm/restore` map (from the request)",
              "standby-lazy": "standby VMM, `PUT /vm/restore` lazy (from the request)",
              "standby-tcp": "standby VMM, `PUT /vm/restore` tcp:// lazy (from the request)",
              "standby-tcp-ws": "the same, prefetching a recorded working set (from the request)",
              "qemu": "QEMU `-incoming \"exec:cat FILE\"`"}
    for mode in RESTORE_MODES:
        x = s.get(mode)
        if not x:
            rows.append(f"| {labels[mode]} | failed | | | | | |")
            continue
        e = x["spawn_to_echo_ms"]
        target = "" if mode == "qemu" else f" {check(e['median'] <= 40)}"
        ratio = "" if mode == "qemu" else f"**{x['qemu_over_this']:.1f}×** {check(x['qemu_over_this'] >= 10)}" if x.get("qemu_over_this") else "—"
        line = ("—" if mode == "qemu" else f"{x['restore_ms']['median']:.1f} / {x['spawn_to_restored_line_ms']['median']:.1f}"
                if "spawn_to_restored_line_ms" in x or mode == "qemu" else f"{x['restore_ms']['median']:.1f} (request → vCPUs running)")
        rows.append(f"| {labels[mode]} | **{e['median']:.1f}**{target} | {e['min']:.1f} | {e['max']:.1f} | "
                    f"{x['echoed_datagram_sent_after_spawn_ms']['median']:.1f} | {line} | {ratio} |")
    allruns = "\n".join(f"- {mode}: " + ", ".join(f"{v:.1f}" for v in s[mode]["spawn_to_echo_ms"]["all"]) for mode in RESTORE_MODES if s.get(mode))
    failures = "".join(f"\n- failed: {f['mode']} (round {f['round']}): `{f['error'][-300:]}`" for f in r.get("failures", []))
    return f"""## Restore to first answer ({r['rounds']} rounds, after one unrecorded warm-up each)

| restore | spawn (standby: request) → first echo, median (ms; target ≤ 40) | min | max | the first echoed datagram was sent (ms after spawn or request) | Engram's "restored … in X ms" / spawn → that line (ms) | QEMU ÷ this (target ≥ 10×) |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

For scale: spawn → exit of `engram --help` (starting the process alone, no VM), once per round: median
{num((r.get('help_exit_ms') or {{}}).get('median'), '.1f')} ms. The binary links the Swift runtime {r.get('swift_runtime', 'unknown')}ally{' (`swift build -c release` without `--static-swift-stdlib`, which bench/run.sh uses and which starts a few ms sooner)' if r.get('swift_runtime') == 'dynamic' else ''}.

All runs (spawn → first echo, ms):

{allruns}{failures}
"""


def working_set_pages(r):
    return num(((r or {}).get("working_set_recording") or {}).get("working_set_pages"))


def report(result):
    t, r = result.get("traffic"), result.get("restore")
    notes = result["settings"]
    targets = []
    if t:
        ratios = t["summary"]["ratios"]
        names = {"rtt_64_p50_qemu_over_engram": "64 B round trip p50", "rtt_64_p99_qemu_over_engram": "64 B round trip p99",
                 "rtt_1472_p50_qemu_over_engram": "1472 B round trip p50", "rtt_1472_p99_qemu_over_engram": "1472 B round trip p99",
                 "h2g_window_engram_over_qemu": "host → guest windowed", "h2g_blast_answered_engram_over_qemu": "host → guest as fast as it can",
                 "g2h_engram_over_qemu": "guest → host"}
        below = [f"{names.get(k, k)} ({v:.2f})" for k, v in ratios.items() if v < 1]
        targets.append(f"- Round-trip latency and packet rate at least QEMU's: **{'met' if not below else 'not met for ' + ', '.join(below)}**.")
    if r:
        s = r["summary"]
        for mode in RESTORE_MODES[:-1]:
            if s.get(mode):
                ms = s[mode]["spawn_to_echo_ms"]["median"]
                ratio = s[mode].get("qemu_over_this")
                targets.append(f"- Restore ({mode}) → first answer ≤ 40 ms: **{'met' if ms <= 40 else 'not met'}** ({ms:.1f} ms); "
                               f"≥ 10× faster than QEMU: **{'met' if ratio and ratio >= 10 else 'not met'}** ({num(ratio, '.1f')}×).")
    stats = result.get("guest_stats", {})
    return f"""# Network: Engram vs QEMU microvm (virtio-net on a tap)

Written by `bench/network.py` on {result['date']}, {result['host']}, Engram at commit {result['commit']}
({build_note(result['engram_binary'])}). {result['machine_notes']}
QEMU {result['qemu_version']} `-M microvm,acpi=off -accel kvm`, `-netdev tap,ifname=TAP,script=no,downscript=no,vhost=off
-device virtio-net-device,mac=M`, `-global virtio-mmio.force-legacy=false`. Engram `run --net tap=TAP,mac=M`.
Both: the test kernel, {notes['memory'].replace('G', ' GiB')}, 1 vCPU, `{guest_cmdline('A.B.C.D')}`, the same ring-3 virtio-net driver and
stack (the UDP echo service runs in the guest's idle loop after each device interrupt). Host load average
{result['load_average']['start']} at the start, {result['load_average']['end']} at the end; the run took {result['bench_seconds']} s.
{'**Quick run** (`--quick`): one round, short runs; a check of the script, not the committed figures.' if result['quick'] else ''}

- **Network**: a namespace of the bench's own with a bridge holding {result.get('host_address', 'the host address')}/24 and one
  tap per VM (`ip tuntap add NAME mode tap vnet_hdr`), the bench process inside it (setns), so the VMMs and the host
  sockets are there; deleted at the end. Each guest has its own tap and address; the host has a permanent neighbour
  entry per guest (its MAC), so no figure waits on the host's ARP timers. Both VMs stay up for the traffic rounds.
- **Round trips**: one datagram in flight, {notes['exchanges']} exchanges per run after 50 untimed ones, each timed on the
  host with `perf_counter_ns` (send → the echo read), p50 and p99 (nearest rank) per run, medians over rounds.
- **Host → guest**: 64-byte datagrams to the echo port for {notes['seconds']} s: *windowed*, {notes['window']} in flight and one
  more per echo (refilled after 20 ms without one); *as fast as the host can*, non-blocking sends in bursts of 64,
  echoes drained between bursts (the Python sender takes one of the 2 host cores, so the VMM has the other).
  Echoes/s is what the guest took and answered.
- **Guest → host**: `net flood 0 HOST {SINK_PORT} 64 COUNT` (COUNT = {t['flood_count'] if t else '—'}, sized by an unrecorded flood per
  VMM so a run takes about {notes['seconds']} s); a host socket in its own process counts what arrives, rate from the first
  to the last datagram received.
- **Restore to first answer**: a few echoes, then `engram snapshot API SNAP` of the running guest (it resumes, then
  stops) and QEMU's `migrate exec:cat > FILE` of its running guest (max-bandwidth raised; the source stops when it
  completes). Each restore runs onto a second tap (Engram `--net tap=T2`, the MAC the saved one; QEMU the same command
  line on T2 plus `-incoming "exec:cat FILE"`: it starts the guest by itself once the file is read, since the source was
  running). A host client in its own process sends a 64-byte datagram to the guest's echo port every millisecond,
  starting before the spawn; the figure is the VMM's spawn → the client's first echo (CLOCK_MONOTONIC in both
  processes). Datagrams sent before the VMM has the tap are lost (the port of a tap nobody holds is down). The
  snapshot and the migration file are in the host page cache. The page server is `engram serve SNAP` on 127.0.0.1
  in the same namespace. Standby rows: `engram standby --memory M --net tap=T2 --api-socket S` is started and made
  ready first (not timed); the figure runs from sending `PUT /vm/restore` (on a connection opened before) to the
  first echo: what a platform that keeps VMMs ready waits. The working-set row restores from a second `engram serve`
  of a copy of the snapshot, beside which one `engram restore tcp://… --memory lazy --record-working-set 1`, run once
  before the rounds with the same client sending, recorded the pages the guest touched in its first second
  ({working_set_pages(r)} pages); its restores fetch those in one stream as the guest resumes (the default prefetch),
  where the other `tcp://` rows fetch nothing ahead. Modes rotate per round.

Targets (issue 18):

{chr(10).join(targets)}

{traffic_section(t, notes)}
{restore_section(r)}
Snapshot: `{json.dumps(result.get('snapshot'))}`; QEMU migration file: `{json.dumps(result.get('migration'))}`.

The guests' counters at the end of the traffic rounds: Engram `{stats.get('engram', '—')}`; QEMU `{stats.get('qemu', '—')}`.
{result.get('findings') or ''}"""


# ---- main --------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="traffic,restore", help="traffic, restore or both; a part not run keeps its figures from OUTPUT.json")
    parser.add_argument("--rounds", type=int, default=5, help="traffic rounds")
    parser.add_argument("--exchanges", type=int, default=2000, help="timed round trips per run and size")
    parser.add_argument("--seconds", type=float, default=1.5, help="length of a packet-rate run")
    parser.add_argument("--window", type=int, default=16, help="datagrams in flight, windowed host → guest")
    parser.add_argument("--restore-rounds", type=int, default=9)
    parser.add_argument("--memory", default="1G")
    parser.add_argument("--quick", action="store_true", help="1 round, short runs, 3 restores each (a check of the script)")
    parser.add_argument("--engram", default=os.path.join(ROOT, ".build/release/engram"))
    parser.add_argument("--tmpdir", default="/var/tmp", help="where the snapshot and the migration file go (not tmpfs)")
    parser.add_argument("--output", default=os.path.join(ROOT, "docs/results/network"))
    parser.add_argument("--findings", help="a Markdown file whose text goes into the report as findings")
    parser.add_argument("--report-only", action="store_true", help="rewrite OUTPUT.md from OUTPUT.json, run nothing")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if not parts or parts - {"traffic", "restore"}:
        parser.error(f"--parts: traffic, restore or traffic,restore, not {args.parts!r}")
    if args.report_only:
        with open(args.output + ".json") as saved:
            result = json.load(saved)
        add_findings(result, args)
        write(args, result)
        return 0
    if args.quick:
        args.rounds, args.exchanges, args.seconds, args.restore_rounds = 1, min(args.exchanges, 500), min(args.seconds, 0.5), min(args.restore_rounds, 3)
    previous = None
    if parts != {"traffic", "restore"} and os.path.exists(args.output + ".json"):
        with open(args.output + ".json") as saved:
            previous = json.load(saved)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_start = " ".join(open("/proc/loadavg").read().split()[:3])
    source = os.path.realpath(args.engram)
    built = datetime.fromtimestamp(os.path.getmtime(source), timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    build = "debug" if "/debug/" in source else "release" if "/release/" in source else "unknown"
    tmp = tempfile.mkdtemp(prefix="engram-network-", dir=args.tmpdir)
    started = time.monotonic()
    args.network = None
    try:
        args.engram = os.path.join(tmp, "engram")  # a copy: a build that replaces the binary mid-run changes nothing
        shutil.copy2(source, args.engram)
        args.network = Namespace(("ea", "eb", "qa", "qb"))
        log(f"== namespace {args.network.name}, taps {args.network.taps}")
        measured = measure(args, tmp, parts)
    finally:
        kill_all()
        if args.network:
            args.network.close()
        shutil.rmtree(tmp, ignore_errors=True)
    qemu_version = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": f"{platform.node()} ({os.cpu_count()} CPUs, kernel {platform.release()})",
        "commit": git_commit(),
        "engram_binary": {"path": source, "built": built, "build": build},
        "machine_notes": "KVM here is PVM (kvm_pvm, no hardware virtualization): guest ring 0 is emulated, ring 3 runs "
                         "natively; 2 cores, which other work may share (the load averages below say how busy the host "
                         "was), hence medians.",
        "qemu_version": qemu_version.replace("QEMU emulator version ", ""),
        "load_average": {"start": load_start, "end": " ".join(open("/proc/loadavg").read().split()[:3])},
        "bench_seconds": round(time.monotonic() - started, 1),
        "quick": args.quick,
        "settings": {"memory": args.memory, "rounds": args.rounds, "exchanges": args.exchanges, "seconds": args.seconds,
                     "window": args.window, "restore_rounds": args.restore_rounds, "parts": sorted(parts)},
        **{k: v for k, v in measured.items()},
    }
    if previous:
        for key in ("traffic", "guest_stats") if "traffic" not in parts else ("restore", "snapshot", "migration"):
            if key in previous and key not in result:
                result[key] = previous[key]
    add_findings(result, args)
    write(args, result)
    print(report(result))


def add_findings(result, args):
    if args.findings:
        with open(args.findings) as f:
            result["findings"] = "\n" + f.read().strip() + "\n"


def write(args, result):
    with open(args.output + ".json", "w") as out:
        json.dump(result, out, indent=2)
        out.write("\n")
    with open(args.output + ".md", "w") as out:
        out.write(report(result))


if __name__ == "__main__":
    sys.exit(main())
