#!/usr/bin/env python3
"""Live migration over loopback: Engram pre-copy, post-copy and shared beside QEMU 7.2's pre-copy, in one run.

The guest: the test kernel, 1 GiB, 1 vCPU, command line `cpus=1 -- fill 512 7; dirty 64; heartbeat 10`
(the same for both VMMs): it fills 512 MiB, then a background dirtier rewrites 64 MiB/s of those pages
(`--dirty`), and it prints `TICK <n>` every 10 ms. Each migration starts from a fresh source, once it has
printed FILL and DIRTY and `--settle` seconds of TICK lines (the normal gap between them). Per migration:

- Engram (`--mode precopy|postcopy|shared`): `engram run ... --api-socket S` is the source (shared: with
  `--shared-maps PREFIX:ram`, a file in /dev/shm, which the destination, given `--shared-dir /dev/shm`, maps by the same path);
  `engram receive --listen 127.0.0.1:0 --secret-file F --api-socket D` the destination; then
  `engram migrate S --to tcp://127.0.0.1:PORT --secret-file F --mode M --max-downtime-ms T`, whose final
  status gives total_ms, downtime_ms (source paused → destination runs the guest), bytes_sent, pages_sent,
  passes. Post-copy: the pages go over the source's page server, whose bytes the source adds to
  bytes_sent; the destination's `lazy.transfer.bytes_received` (GET /vm/memory/stats, read once
  `lazy.complete`) gives the page-server part; total_ms runs until every page is at the destination.
- QEMU (Debian's qemu-system-x86_64 7.2, `-M microvm -accel kvm`, same -m/-smp/-kernel/-append and devices
  on both sides): the destination is started with `-incoming tcp:127.0.0.1:PORT`; on the source's QMP socket
  `migrate-set-parameters` sets `downtime-limit` = T and `max-bandwidth`, then `migrate tcp:...`, and
  `query-migrate` is polled until `completed`: total-time, downtime, setup-time, ram.transferred (and
  precopy-bytes, downtime-bytes, normal pages, duplicate (zero) pages, dirty-sync-count). Two variants:
  `qemu` with max-bandwidth raised out of the way (Engram has no bandwidth cap either), and `qemu-capped` with
  QEMU 7.2's default cap (128 MiB/s).
- Guest-visible downtime (both VMMs, same definition): both consoles are read from pipes, unbuffered, the
  whole time, and every TICK line gets the host's monotonic time of its arrival. It is the time from the
  source's last TICK to the destination's first TICK, minus the median gap between the source's TICK lines
  before the migration (≈ 10 ms). The TICK number step across the switch is recorded. This matters because
  the VMMs' own figures differ: Engram's downtime_ms ends when the destination runs the guest, QEMU 7.2's
  `downtime` ends when the source has sent the last of its state (the destination's load is not in it).
- Memory touched: the source's non-zero pages, from `engram mem stats S --json` (pages − zero) just before
  each Engram migration (the 512 MiB filled plus the kernel's pages); QEMU's guest is the same, so its ratio
  uses the median of those counts. Engram's first pre-copy pass sends exactly these pages (it skips zero ones).
- After each migration the destination must answer `ticks` (TICKS) and, after `dirty 0`, print a `digest`
  equal to the FILL digest (every mode, QEMU included).

Runs alternate the modes (engram-precopy, engram-postcopy, engram-shared, qemu, qemu-capped) after
`--warmup` unrecorded rounds; medians of `--runs`. Writes docs/results/migration.md and .json.
"""
import argparse, json, os, platform, re, secrets, shutil, signal, socket, statistics, subprocess, sys
import tempfile, time
from datetime import datetime, timezone

from benchlib import PROCESSES, QMP, Child, median_gap_ms, pump, pump_until, run_json, summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL = os.path.join(ROOT, "guest/build/engram-test-kernel.elf")
MIB = 1 << 20
PAGE = 4096
FILL = re.compile(rb"FILL mib=(\d+) seed=(\d+) digest=([0-9a-f]{16})|(?:ERROR|PANIC) [^\r\n]*")
DIRTY = re.compile(rb"DIRTY rate_mib_s=(\d+)|(?:ERROR|PANIC) [^\r\n]*")
DIGEST = re.compile(rb"DIGEST mib=(\d+) digest=([0-9a-f]{16})|(?:ERROR|PANIC) [^\r\n]*")
TICKS = re.compile(rb"TICKS (\d+)\r")
ENGRAM_MODES = ("engram-precopy", "engram-postcopy", "engram-shared", "engram-precopy-plaintext", "engram-postcopy-plaintext",
                "engram-precopy-2ch", "engram-precopy-2ch-plaintext")
TLS_TARGET = 0.70  # TLS throughput at least this share of plaintext's
QEMU_MODES = ("qemu", "qemu-capped")
QEMU_DEFAULT_BANDWIDTH = 128 * MIB  # QEMU 7.2's max-bandwidth default (query-migrate-parameters says 134217728)
UNCAPPED_BANDWIDTH = 1 << 40
SHARED_TARGET_MS = 20.0
PRECOPY_BYTES_TARGET = 1.2
def wait_console(child, pattern, timeout, what, others=()):
    """The next match of `pattern` on the child's console (after the previous one); guest errors raise."""
    found = []

    def matched():
        match = pattern.search(child.out, child.scanned)
        if match:
            found.append(match)
        return bool(match)

    pump_until([child, *others], matched, timeout, what, watch=[child])
    child.scanned = found[0].end()
    if not found[0].group(1):
        raise RuntimeError(f"{child.name}: guest error while waiting for {what}: {found[0].group(0).decode(errors='replace')}")
    return found[0]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Bench:
    def __init__(self, args, tmp):
        self.args, self.tmp = args, tmp
        self.sequence = 0
        self.secret = os.path.join(tmp, "secret")
        with open(os.open(self.secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(secrets.token_hex(32))
        parts = [f"fill {args.fill_mib} 7", f"dirty {args.dirty}"]
        if args.heartbeat_ms:
            parts.append(f"heartbeat {args.heartbeat_ms}")
        self.cmdline = "cpus=1 -- " + "; ".join(parts)
        self.fill_digest = None

    def path(self, what):
        self.sequence += 1
        return os.path.join(self.tmp, f"{what}-{self.sequence}")

    # --- common ---------------------------------------------------------------------------------------
    def source_ready(self, source):
        """Waits for FILL and DIRTY and --settle seconds of TICK lines; (fill digest, normal TICK gap ms)."""
        args = self.args
        match = wait_console(source, FILL, args.boot_timeout, "the FILL line")
        digest = match.group(3).decode()
        if self.fill_digest is None:
            self.fill_digest = digest
        elif digest != self.fill_digest:
            raise RuntimeError(f"{source.name}: FILL digest {digest} differs from the first run's {self.fill_digest}")
        wait_console(source, DIRTY, 60, "the DIRTY line")
        first = len(source.ticks)
        deadline = time.monotonic() + args.settle
        pump_until([source], lambda: time.monotonic() >= deadline, args.settle + 10, "the settle time")
        normal = median_gap_ms(source.ticks[first:]) if args.heartbeat_ms else None
        if args.heartbeat_ms and (normal is None or len(source.ticks) - first < 5):
            raise RuntimeError(f"{source.name}: too few TICK lines in {args.settle:g} s: {source.tail()}")
        return digest, normal

    def guest_visible(self, source, destination, normal_ms):
        """(downtime ms, TICK step): source's last TICK → destination's first TICK, less the normal gap."""
        if not self.args.heartbeat_ms:
            return {}
        pump_until([source, destination], lambda: destination.ticks, 60, "the destination's first TICK", watch=[destination])
        if not source.ticks:
            raise RuntimeError(f"{source.name}: no TICK line at all")
        last, first = source.ticks[-1], destination.ticks[0]
        gap = (first[0] - last[0]) * 1000
        return {"guest_visible_ms": gap - normal_ms, "tick_gap_ms": gap, "normal_gap_ms": normal_ms,
                "tick_before": last[1], "tick_after": first[1], "tick_step": first[1] - last[1]}

    def check_destination(self, destination):
        """The destination answers `ticks`; after `dirty 0`, its `digest` equals the FILL digest."""
        destination.scanned = len(destination.out)
        destination.type_line("ticks")
        ticks = int(wait_console(destination, TICKS, 60, "the TICKS answer").group(1))
        destination.type_line("dirty 0")
        wait_console(destination, DIRTY, 60, "the DIRTY line of `dirty 0`")
        destination.type_line("digest")
        digest = wait_console(destination, DIGEST, self.args.digest_timeout, "the DIGEST line").group(2).decode()
        if digest != self.fill_digest:
            raise RuntimeError(f"GUEST MEMORY DIFFERS after migrating to {destination.name}: DIGEST {digest} != FILL {self.fill_digest}")
        return {"destination_ticks": ticks, "digest_ok": True}

    # --- Engram -------------------------------------------------------------------------------------
    def engram(self, mode):
        args = self.args
        # The default is TLS 1.3 keyed by the secret; "-plaintext" modes add --insecure-plaintext on both ends.
        plaintext = mode.endswith("-plaintext")
        mode = mode.removesuffix("-plaintext")
        insecure = ["--insecure-plaintext"] if plaintext else []
        # "-Nch": pre-copy's pages over N page channels beside the control connection (--channels N).
        split = re.fullmatch(r"(.*)-(\d+)ch", mode)
        mode, channels = (split.group(1), ["--channels", split.group(2)]) if split else (mode, [])
        src_api, dst_api = self.path("src") + ".sock", self.path("dst") + ".sock"
        extra, shared_file = [], None
        if mode == "shared":
            prefix = os.path.join(args.shared_dir, f"engram-bench-migration-{os.getpid()}-{self.sequence}")
            shared_file = prefix + ".ram"
            extra = ["--shared-maps", f"{prefix}:ram"]
        source = Child([args.engram, "run", "--kernel", KERNEL, "--memory", args.memory, "--cpus", "1",
                        "--cmdline", self.cmdline, "--api-socket", src_api, *extra], f"engram run ({mode})")
        destination = None
        try:
            _, normal = self.source_ready(source)
            stats = run_json([args.engram, "mem", "stats", src_api, "--json"])
            touched_pages = sum(row["pages"] - row["zero"] for row in stats)
            shared_dir = ["--shared-dir", args.shared_dir] if mode == "shared" else []
            destination = Child([args.engram, "receive", "--listen", "127.0.0.1:0", "--secret-file", self.secret,
                                 "--api-socket", dst_api, *shared_dir, *insecure], f"engram receive ({mode})")
            found = []
            pattern = re.compile(rb"waiting for a migration on 127\.0\.0\.1:(\d+)")
            pump_until([source, destination], lambda: found.append(pattern.search(destination.err)) or found[-1], 30,
                       "engram receive's listening line")
            port = int(found[-1].group(1))
            command = [args.engram, "migrate", src_api, "--to", f"tcp://127.0.0.1:{port}", "--secret-file", self.secret,
                       "--mode", mode, "--max-downtime-ms", str(args.max_downtime_ms), *channels, *insecure]
            migrate = Child(command, f"engram migrate --mode {mode}")
            started = migrate.started
            try:
                # Its progress lines (every 100 ms, on stderr) get their arrival times: when pass 2 began.
                pump_until([source, destination, migrate], lambda: migrate.process.poll() is not None and not migrate.streams(),
                           args.migrate_timeout, f"engram migrate --mode {mode}", watch=[source, destination])
                finished = time.monotonic()
            finally:
                migrate.stop()
            if migrate.process.returncode != 0:
                raise RuntimeError(f"engram migrate --mode {mode} exited with {migrate.process.returncode}: "
                                   f"{migrate.err.decode(errors='replace').strip()[-800:]} | source: {source.tail()} | "
                                   f"destination: {destination.tail()}")
            status = json.loads(migrate.out)
            if status.get("status") != "completed":
                raise RuntimeError(f"engram migrate --mode {mode}: {json.dumps(status)}")
            visible = self.guest_visible(source, destination, normal)
            # The source VMM ends by itself once the destination runs the guest (post-copy: has every page).
            pump_until([source, destination], lambda: source.process.poll() is not None, 30, "the source VMM's exit",
                       watch=[destination])
            copying = [t for t, line in migrate.stderr_lines if "copying, pass 1," in line]
            second = [t for t, line in migrate.stderr_lines if "copying, pass 2," in line]
            sample = {"total_ms": status.get("total_ms"), "downtime_ms": status.get("downtime_ms"),
                      "bytes_sent": status.get("bytes_sent"), "control_bytes": status.get("bytes_sent"),
                      "pages_sent": status.get("pages_sent"), "zero_pages_sent": status.get("zero_pages_sent"),
                      "passes": status.get("passes"), "touched_pages": touched_pages, "touched_bytes": touched_pages * PAGE,
                      "dirty_mib_s_measured": (status.get("dirty_pages_per_second") or 0) * PAGE / MIB,
                      "migrate_command_ms": (finished - started) * 1000, "source_exit": source.process.returncode,
                      "last_pass_bandwidth_mib_s": (status.get("bandwidth_bytes_per_second") or 0) / MIB or None,
                      "throughput_mib_s": (status.get("bytes_sent") or 0) / MIB / (status["total_ms"] / 1000) if status.get("total_ms") else None,
                      **visible}
            if copying and second:
                # Pass 1 sends exactly the non-zero pages; its length is known to the 100 ms of the progress lines.
                pass1 = (second[0] - copying[0]) * 1000
                sample.update(pass1_ms_approx=pass1, pass1_mib_s_approx=touched_pages * PAGE / MIB / (pass1 / 1000))
            if mode == "postcopy":
                lazy = {}
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    lazy = run_json([args.engram, "ctl", dst_api, "get", "/vm/memory/stats"]).get("lazy") or {}
                    if lazy.get("complete"):
                        break
                    pump([destination], 0.05)
                if not lazy.get("complete"):
                    raise RuntimeError(f"post-copy: the destination's lazy fill never completed: {json.dumps(lazy)}")
                transfer = lazy.get("transfer") or {}
                # The source counts its page server's bytes in bytes_sent; the destination's count checks it.
                sample.update(page_server_bytes=transfer.get("bytes_received"),
                              control_bytes=status["bytes_sent"] - (transfer.get("bytes_received") or 0),
                              bytes_sent=status["bytes_sent"],
                              pages_received=transfer.get("pages_received"), demand_faults=lazy.get("demand_faults"),
                              fill_ms=lazy.get("fill_milliseconds"), fault_p50_us=(lazy.get("fault_latency") or {}).get("p50_us"),
                              fault_p99_us=(lazy.get("fault_latency") or {}).get("p99_us"))
            sample["bytes_over_touched"] = sample["bytes_sent"] / sample["touched_bytes"]
            sample.update(self.check_destination(destination))
            return sample
        finally:
            for child in (source, destination):
                if child:
                    child.stop()
            if shared_file and os.path.exists(shared_file):
                os.unlink(shared_file)

    # --- QEMU ---------------------------------------------------------------------------------------
    def qemu_command(self, qmp_path, incoming=None):
        command = ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-m", self.args.memory, "-smp", "1",
                   "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
                   "-kernel", KERNEL, "-append", self.cmdline, "-qmp", f"unix:{qmp_path},server=on,wait=off"]
        if incoming:
            command += ["-incoming", incoming]
        return command

    def qemu(self, mode):
        args = self.args
        bandwidth = QEMU_DEFAULT_BANDWIDTH if mode == "qemu-capped" else UNCAPPED_BANDWIDTH
        src_qmp, dst_qmp = self.path("qmp-src") + ".sock", self.path("qmp-dst") + ".sock"
        port = free_port()
        destination = Child(self.qemu_command(dst_qmp, f"tcp:127.0.0.1:{port}"), f"QEMU -incoming ({mode})")
        source = Child(self.qemu_command(src_qmp), f"QEMU source ({mode})")
        qmp = dst = None
        try:
            _, normal = self.source_ready(source)
            qmp = QMP(src_qmp)
            qmp.command("migrate-set-parameters", **{"downtime-limit": int(round(args.max_downtime_ms)), "max-bandwidth": bandwidth})
            parameters = qmp.command("query-migrate-parameters")
            started = time.monotonic()
            qmp.command("migrate", uri=f"tcp:127.0.0.1:{port}")
            deadline = started + args.migrate_timeout
            while True:
                info = qmp.command("query-migrate")
                if info.get("status") == "completed":
                    break
                if info.get("status") in ("failed", "cancelled"):
                    raise RuntimeError(f"QEMU migration {info.get('status')}: {info.get('error-desc', '')} | "
                                       f"destination: {destination.tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"timeout ({args.migrate_timeout:g} s): QEMU migration: {json.dumps(info)}")
                pump([source, destination], 0.01)
                for child in (source, destination):
                    if child.process.poll() is not None:
                        raise RuntimeError(f"{child.name} exited with {child.process.returncode}: {child.tail()}")
            finished = time.monotonic()
            visible = self.guest_visible(source, destination, normal)
            dst = QMP(dst_qmp)
            deadline = time.monotonic() + 30
            while (dst_status := dst.command("query-status")).get("status") != "running" and time.monotonic() < deadline:
                pump([source, destination], 0.01)
            ram = info.get("ram") or {}
            sample = {"total_ms": info.get("total-time"), "downtime_ms": info.get("downtime"), "setup_ms": info.get("setup-time"),
                      "bytes_sent": ram.get("transferred"), "precopy_bytes": ram.get("precopy-bytes"),
                      "downtime_bytes": ram.get("downtime-bytes"), "normal_bytes": ram.get("normal-bytes"),
                      "normal_pages": ram.get("normal"), "zero_pages": ram.get("duplicate"),
                      "passes": ram.get("dirty-sync-count"), "mbps": ram.get("mbps"),
                      "max_bandwidth": parameters.get("max-bandwidth"), "downtime_limit": parameters.get("downtime-limit"),
                      "poll_ms": (finished - started) * 1000, "destination_status": dst_status.get("status"), **visible}
            if dst_status.get("status") != "running":
                raise RuntimeError(f"QEMU's destination is {dst_status}, not running")
            sample.update(self.check_destination(destination))
            return sample
        finally:
            for client in (qmp, dst):
                if client:
                    client.close()
            for child in (source, destination):
                child.stop()

    def one(self, mode):
        return self.engram(mode.split("-", 1)[1]) if mode in ENGRAM_MODES else self.qemu(mode)


# --- report ---------------------------------------------------------------------------------------------
def med(result, mode, key):
    entry = (result["modes"].get(mode) or {}).get(key)
    return entry["median"] if entry else None


def size(value):
    if value is None:
        return "–"
    return f"{value / MIB:.1f} MiB" if value >= MIB else f"{value / 1024:.1f} KiB"


def fmt(value, unit="", digits=1):
    if value is None:
        return "–"
    return f"{value:.{digits}f}{unit}"


def aggregate(samples, touched_median):
    keys = sorted({k for s in samples for k, v in s.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    entry = {key: summary([s.get(key) for s in samples]) for key in keys}
    if touched_median and "touched_bytes" not in entry:
        entry["bytes_over_touched"] = summary([s["bytes_sent"] / touched_median for s in samples if s.get("bytes_sent")])
    entry["tick_steps"] = [s.get("tick_step") for s in samples]
    entry["runs"] = len(samples)
    return entry


def compute(result):
    """Medians, ratios and verdicts from the samples."""
    touched = [s["touched_bytes"] for mode in ENGRAM_MODES for s in result["samples"].get(mode, []) if s.get("touched_bytes")]
    result["touched_bytes_median"] = statistics.median(touched) if touched else None
    result["modes"] = {}
    for mode, samples in result["samples"].items():
        if samples:
            result["modes"][mode] = aggregate(samples, result["touched_bytes_median"])
    ratios = {}
    for qemu in QEMU_MODES:
        if qemu not in result["modes"]:
            continue
        for mode in ENGRAM_MODES:
            if mode not in result["modes"]:
                continue
            row = {}
            for key in ("downtime_ms", "guest_visible_ms", "bytes_sent", "total_ms"):
                a, b = med(result, mode, key), med(result, qemu, key)
                row[key] = round(a / b, 3) if a is not None and b else None
            ratios[f"{mode}/{qemu}"] = row
    result["ratios"] = ratios
    verdicts = []
    shared = med(result, "engram-shared", "downtime_ms")
    shared_visible = med(result, "engram-shared", "guest_visible_ms")
    verdicts.append({"target": f"shared-mode downtime ≤ {SHARED_TARGET_MS:.0f} ms",
                     "met": None if shared is None else shared <= SHARED_TARGET_MS,
                     "detail": f"VMM-reported {fmt(shared, ' ms', 2)}; guest-visible {fmt(shared_visible, ' ms')} "
                               f"({'met' if shared_visible is not None and shared_visible <= SHARED_TARGET_MS else 'not met'} by that measure)"})
    ratio = med(result, "engram-precopy", "bytes_over_touched")
    verdicts.append({"target": f"pre-copy bytes ≤ {PRECOPY_BYTES_TARGET}× memory touched",
                     "met": None if ratio is None else ratio <= PRECOPY_BYTES_TARGET,
                     "detail": f"{fmt(ratio, '×', 3)} ({fmt(med(result, 'engram-precopy', 'bytes_sent') and med(result, 'engram-precopy', 'bytes_sent') / MIB, ' MiB', 1)} "
                               f"for {fmt(result['touched_bytes_median'] and result['touched_bytes_median'] / MIB, ' MiB', 1)} touched)"})
    for qemu in QEMU_MODES:
        label = "QEMU's (no bandwidth cap)" if qemu == "qemu" else "QEMU's (its default 128 MiB/s cap)"
        if qemu not in result["modes"]:
            verdicts.append({"target": f"Engram pre-copy downtime ≤ {label}, same downtime target", "met": None,
                             "detail": f"QEMU not measured: {result.get('qemu_errors', {}).get(qemu, 'no run')}"})
            continue
        e_vis, q_vis = med(result, "engram-precopy", "guest_visible_ms"), med(result, qemu, "guest_visible_ms")
        e_vmm, q_vmm = med(result, "engram-precopy", "downtime_ms"), med(result, qemu, "downtime_ms")
        met = None if e_vis is None or q_vis is None else e_vis <= q_vis
        verdicts.append({"target": f"Engram pre-copy downtime ≤ {label}, same downtime target (guest-visible)", "met": met,
                         "detail": f"guest-visible {fmt(e_vis, ' ms')} vs {fmt(q_vis, ' ms')}; VMM-reported {fmt(e_vmm, ' ms')} vs "
                                   f"{fmt(q_vmm, ' ms')} ({'≤' if e_vmm is not None and q_vmm is not None and e_vmm <= q_vmm else '>'} "
                                   f"by that measure, which is not the same measure for both)"})
    for kind in ("precopy", "postcopy"):
        tls, plain = f"engram-{kind}", f"engram-{kind}-plaintext"
        a, b = med(result, tls, "throughput_mib_s"), med(result, plain, "throughput_mib_s")
        share = a / b if a and b else None
        verdicts.append({"target": f"{kind} throughput over TLS ≥ {TLS_TARGET:.0%} of plaintext",
                         "met": None if share is None else share >= TLS_TARGET,
                         "detail": f"{fmt(a, ' MiB/s', 0)} over TLS vs {fmt(b, ' MiB/s', 0)} plaintext ({fmt(share and share * 100, '%', 0)}); "
                                   f"total {fmt(med(result, tls, 'total_ms'), ' ms', 0)} vs {fmt(med(result, plain, 'total_ms'), ' ms', 0)}; "
                                   f"downtime {fmt(med(result, tls, 'downtime_ms'), ' ms')} vs {fmt(med(result, plain, 'downtime_ms'), ' ms')} "
                                   f"(guest-visible {fmt(med(result, tls, 'guest_visible_ms'), ' ms')} vs {fmt(med(result, plain, 'guest_visible_ms'), ' ms')})"})
    result["verdicts"] = verdicts


LABELS = {"engram-precopy": "Engram pre-copy", "engram-postcopy": "Engram post-copy", "engram-shared": "Engram shared",
          "engram-precopy-plaintext": "Engram pre-copy, plaintext", "engram-postcopy-plaintext": "Engram post-copy, plaintext",
          "engram-precopy-2ch": "Engram pre-copy, 2 page channels", "engram-precopy-2ch-plaintext": "Engram pre-copy, 2 page channels, plaintext",
          "qemu": "QEMU 7.2 pre-copy, no bandwidth cap", "qemu-capped": "QEMU 7.2 pre-copy, default 128 MiB/s cap"}


def report(result):
    rows = []
    for mode in (*ENGRAM_MODES, *QEMU_MODES):
        if mode not in result["modes"]:
            why = result.get("qemu_errors", {}).get(mode) or result.get("errors", {}).get(mode) or "not run"
            rows.append(f"| {LABELS[mode]} | not measured: {why} | | | | | | |")
            continue
        ratio = fmt(med(result, mode, "bytes_over_touched"), "×", 3)
        ratio = {"engram-postcopy": f"({ratio})", "engram-shared": "–"}.get(mode, f"**{ratio}**")
        rows.append(f"| {LABELS[mode]} | {fmt(med(result, mode, 'total_ms'), '', 0)} | {fmt(med(result, mode, 'downtime_ms'), '', 1)} | "
                    f"{fmt(med(result, mode, 'guest_visible_ms'), '', 1)} | {size(med(result, mode, 'bytes_sent'))} | {ratio} | "
                    f"{fmt(med(result, mode, 'passes'), '', 0)} | {', '.join(str(s) for s in result['modes'][mode]['tick_steps'])} |")
    ratio_rows = []
    for key, row in result["ratios"].items():
        mode, qemu = key.split("/")
        ratio_rows.append(f"| {LABELS[mode]} ÷ {LABELS[qemu]} | {fmt(row['downtime_ms'], '×', 2)} | {fmt(row['guest_visible_ms'], '×', 2)} | "
                          f"{fmt(row['bytes_sent'], '×', 2)} | {fmt(row['total_ms'], '×', 2)} |")
    verdicts = [f"- {v['target']}: **{'met' if v['met'] else 'not met' if v['met'] is False else 'not measured'}** — {v['detail']}."
                for v in result["verdicts"]]
    runs = []
    for mode in (*ENGRAM_MODES, *QEMU_MODES):
        entry = result["modes"].get(mode)
        if not entry:
            continue
        parts = [f"total {entry['total_ms']['all']}", f"downtime {entry['downtime_ms']['all']}"]
        if entry.get("guest_visible_ms"):
            parts.append(f"guest-visible {entry['guest_visible_ms']['all']}")
        parts.append(f"MiB {[round(b / MIB, 2) for b in entry['bytes_sent']['all']]}")
        parts.append(f"passes {entry['passes']['all']}")
        runs.append(f"- {LABELS[mode]}: " + "; ".join(parts))
    extra = []
    post = result["modes"].get("engram-postcopy")
    if post:
        extra.append(f"- Post-copy bytes: control connection {size(post['control_bytes']['median'])} + page server "
                     f"{size((post.get('page_server_bytes') or {}).get('median'))} (destination's "
                     f"`lazy.transfer.bytes_received`); pages received {fmt((post.get('pages_received') or {}).get('median'), '', 0)}, "
                     f"demand faults {fmt((post.get('demand_faults') or {}).get('median'), '', 0)} (fault p50 "
                     f"{fmt((post.get('fault_p50_us') or {}).get('median'), ' µs')}, p99 {fmt((post.get('fault_p99_us') or {}).get('median'), ' µs')}), "
                     f"background fill {fmt((post.get('fill_ms') or {}).get('median'), ' ms', 0)}. Its total time runs until the "
                     f"destination has every page; its downtime ends when the guest runs there (pages still arriving).")
    pre = result["modes"].get("engram-precopy")
    if pre:
        extra.append(f"- Engram pre-copy: {fmt(pre['pages_sent']['median'], '', 0)} pages sent in {fmt(pre['passes']['median'], '', 0)} passes "
                     f"(the first pass is the {fmt(pre['touched_pages']['median'], '', 0)} non-zero pages), "
                     f"{fmt(pre['zero_pages_sent']['median'], '', 0)} zero pages named; dirty rate it measured "
                     f"{fmt(pre['dirty_mib_s_measured']['median'], ' MiB/s')} (the guest was asked for {result['dirty_mib_s']} MiB/s). "
                     f"Pass 1 took about {fmt((pre.get('pass1_ms_approx') or {}).get('median'), ' ms', 0)} (from `engram migrate`'s progress "
                     f"lines, 100 ms apart: ≈ {fmt((pre.get('pass1_mib_s_approx') or {}).get('median'), ' MiB/s', 0)} into fresh destination "
                     f"memory); the last pass ran at {fmt((pre.get('last_pass_bandwidth_mib_s') or {}).get('median'), ' MiB/s', 0)} "
                     f"(`bandwidth_bytes_per_second`). Whatever the guest dirties during pass 1 is sent again: at "
                     f"{result['dirty_mib_s']} MiB/s that alone is ≈ {fmt((pre.get('pass1_ms_approx') or {}).get('median') and result['dirty_mib_s'] * pre['pass1_ms_approx']['median'] / 1000, ' MiB', 0)}.")
    for one, several in (("engram-precopy", "engram-precopy-2ch"), ("engram-precopy-plaintext", "engram-precopy-2ch-plaintext")):
        a, b = med(result, several, "throughput_mib_s"), med(result, one, "throughput_mib_s")
        if a and b:
            extra.append(f"- {LABELS[several]} ÷ {LABELS[one]}: throughput {fmt(a, ' MiB/s', 0)} vs {fmt(b, ' MiB/s', 0)} "
                         f"(**{a / b:.2f}×**), total {fmt(med(result, several, 'total_ms'), ' ms', 0)} vs {fmt(med(result, one, 'total_ms'), ' ms', 0)}, "
                         f"downtime {fmt(med(result, several, 'downtime_ms'), ' ms')} vs {fmt(med(result, one, 'downtime_ms'), ' ms')}. "
                         f"`--channels 2`: two page connections beside the control one, a sending thread each at the source (copy, CRC32C, "
                         f"TLS sealing) and a receiving thread each at the destination. On this 2-core host the guest's vCPU takes one core "
                         f"the whole time, so the four page threads share what is left; the gain is for hosts with cores to spare.")
    shared = result["modes"].get("engram-shared")
    if shared:
        extra.append(f"- Shared: the RAM file is in {result.get('shared_dir')} (`--shared-maps PREFIX:ram` on the source; the destination maps "
                     f"the path the source names); {size(shared['bytes_sent']['median'])} sent (the plan and the machine state).")
    for qemu in QEMU_MODES:
        q = result["modes"].get(qemu)
        if q:
            extra.append(f"- {LABELS[qemu]}: ram.transferred {fmt(q['bytes_sent']['median'] / MIB, ' MiB')} (pre-copy "
                         f"{fmt(q['precopy_bytes']['median'] / MIB, ' MiB')}, in the downtime {fmt(q['downtime_bytes']['median'] / MIB, ' MiB')}), "
                         f"{fmt(q['normal_pages']['median'], '', 0)} normal pages, {fmt(q['zero_pages']['median'], '', 0)} zero ('duplicate') "
                         f"pages, {fmt(q['passes']['median'], '', 0)} dirty syncs, setup {fmt(q['setup_ms']['median'], ' ms', 0)}, "
                         f"{fmt(q['mbps']['median'], ' Mbit/s', 0)}; downtime-limit {result['max_downtime_ms']:g} ms, max-bandwidth "
                         f"{q['max_bandwidth']['median']:.0f} B/s.")
    failures = [f"- {mode} run {i}: {error}" for mode, errors in result.get("errors_by_run", {}).items() for i, error in errors]
    touched = result["touched_bytes_median"]
    return f"""# Live migration over loopback: Engram vs QEMU

Written by `bench/migration.py` on {result['date']}, {result['host']}.
{result['machine_notes']}
Engram release build{result['build_note']}; QEMU {result['qemu_version']} (`-M microvm -accel kvm`). Guest: the test
kernel, {result['memory']} RAM, 1 vCPU, command line `{result['cmdline']}` on both VMMs: it fills {result['fill_mib']} MiB,
then dirties {result['dirty_mib_s']} MiB/s of it in the background and prints `TICK <n>` every {result['heartbeat_ms']} ms.
Each migration starts from a freshly booted source ({result['settle_seconds']:g} s after its DIRTY line) to a fresh destination
on 127.0.0.1. Downtime target {result['max_downtime_ms']:g} ms for all (Engram `--max-downtime-ms`, QEMU `downtime-limit`;
300 ms is QEMU's default). Medians of {result['runs']} runs per mode, modes alternating, after {result['warmup']} unrecorded round(s).

Targets:

{chr(10).join(verdicts)}

| mode | total (ms) | downtime, VMM-reported (ms) | downtime, guest-visible (ms) | bytes sent | bytes ÷ memory touched | passes (QEMU: dirty syncs) | TICK step across the switch |
|---|---:|---:|---:|---:|---:|---:|---|
{chr(10).join(rows)}

| ratio (medians) | downtime, VMM-reported | downtime, guest-visible | bytes | total time |
|---|---:|---:|---:|---:|
{chr(10).join(ratio_rows)}

- **Memory touched** = the source's non-zero pages, `engram mem stats SOURCE_SOCKET --json` (pages − zero) just before
  each Engram migration: median {fmt(touched and touched / MIB, ' MiB', 2)} ({fmt(touched and touched / PAGE, ' pages', 0)}), i.e. the
  {result['fill_mib']} MiB filled plus the kernel's pages. QEMU runs the same guest; its ratio divides by the same median.
  (Post-copy's ratio, in brackets, is not a target: post-copy sends each page once.)
- **VMM-reported downtime**: Engram's `downtime_ms` runs from the source pausing the guest to the destination saying it
  runs it. QEMU 7.2's `downtime` runs from the source stopping the guest to the source having sent the last of the
  stream; the destination's device load and start are not in it. So the two columns are not the same measure.
- **Guest-visible downtime** (same measure for both): both VMMs' consoles are read from pipes, unbuffered, the whole time;
  host arrival time of the destination's first `TICK` − that of the source's last `TICK` − the median gap between the
  source's TICK lines before the migration ({fmt(result.get('normal_gap_ms'), ' ms')}). The step of the TICK number across the
  switch is in the table (1: the guest's clock did not run while it was stopped, so the pause added its length to one
  tick interval; 2: the destination's PIT fired early once, which shortens the gap by up to one interval). It agrees
  with the VMM-reported figure to within a few ms (printing a TICK line through the emulated UART, the console pipes);
  a single run can even come out just below zero when the pause was a couple of ms.
- **TLS**: Engram's migration and post-copy page streams run over TLS 1.3 (OpenSSL {result.get('openssl', '')}, the secret as an
  external pre-shared key, AES-128-GCM) unless both ends say `--insecure-plaintext`; the "plaintext" rows are the same
  migrations with it. Throughput = `bytes_sent` ÷ `total_ms`. This host's kernel has no kTLS, so every byte is
  encrypted and decrypted in user space, on the same 2 cores the guest and both VMMs share.
- **Bytes**: Engram pre-copy and shared `bytes_sent` (the whole migration connection: frames, pages, CRCs, state);
  post-copy: `bytes_sent`, which counts the control connection and the source's page server (the destination's
  `lazy.transfer.bytes_received` is the page-server part). QEMU:
  `ram.transferred` (RAM pages and their headers; the device state, a few KiB, is not in it).
- **When pre-copy stops**: both stop the guest once what is left would take at most the downtime target at the
  bandwidth just measured (Engram: its last pass's; QEMU: `threshold_size` = bandwidth × downtime-limit). With a
  300 ms target, a run whose first pass is fast stops after it with tens of MiB left (tens of ms of downtime, fewer
  bytes); a slower first pass leaves more dirty pages, a second pass follows, and the rest is a few MiB. So the
  pre-copy downtime and bytes swing from run to run with the first pass's speed (see "All runs"), for both VMMs.
- **Total**: Engram's `total_ms` (from the request to the destination running the guest; post-copy: to the destination
  having every page). QEMU's `total-time` (its migration thread's start to completion, source side).
- Every destination answered `ticks` after the migration, and after `dirty 0` its `digest` equalled the FILL digest
  (`{result.get('fill_digest')}`), QEMU's included; QEMU's destination's `query-status` said `running`.
{chr(10).join(extra)}

All runs:

{chr(10).join(runs)}
{(chr(10) + 'Failed runs:' + chr(10) + chr(10) + chr(10).join(failures) + chr(10)) if failures else ''}"""


def build_note():
    note = ""
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
        if commit:
            note += f", commit {commit}{' with uncommitted changes' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        pass
    return note


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="recorded migrations per mode")
    parser.add_argument("--warmup", type=int, default=1, help="unrecorded rounds of every mode first")
    parser.add_argument("--modes", default=",".join((*ENGRAM_MODES, *QEMU_MODES)), help="comma-separated subset")
    parser.add_argument("--memory", default="1G")
    parser.add_argument("--fill-mib", type=int, default=512)
    parser.add_argument("--dirty", type=int, default=64, help="the guest's background dirty rate, MiB/s (`dirty N`)")
    parser.add_argument("--heartbeat-ms", type=int, default=10, help="TICK interval for guest-visible downtime (0: none)")
    parser.add_argument("--max-downtime-ms", type=float, default=300, help="downtime target for every mode")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds of dirtying before each migration")
    parser.add_argument("--engram", default=os.path.join(ROOT, ".build/release/engram"))
    parser.add_argument("--tmpdir", default="/var/tmp")
    parser.add_argument("--shared-dir", default="/dev/shm", help="where shared mode's RAM file goes")
    parser.add_argument("--boot-timeout", type=float, default=120)
    parser.add_argument("--migrate-timeout", type=float, default=180)
    parser.add_argument("--digest-timeout", type=float, default=120)
    parser.add_argument("--output", default=os.path.join(ROOT, "docs/results/migration"))
    parser.add_argument("--report-only", action="store_true", help="rewrite OUTPUT.md from OUTPUT.json, run nothing")
    args = parser.parse_args()
    args.engram = os.path.abspath(args.engram)
    if args.report_only:
        with open(args.output + ".json") as saved:
            result = json.load(saved)
        with open(args.output + ".md", "w") as out:
            out.write(report(result))
        return 0
    for path in (args.engram, KERNEL):
        if not os.path.exists(path):
            raise SystemExit(f"migration.py: {path} does not exist (bench/run.sh builds both)")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(ENGRAM_MODES) - set(QEMU_MODES)
    if unknown:
        raise SystemExit(f"migration.py: unknown modes {sorted(unknown)}")
    qemu_errors = {}
    if any(m in QEMU_MODES for m in modes) and shutil.which("qemu-system-x86_64") is None:
        for m in QEMU_MODES:
            qemu_errors[m] = "qemu-system-x86_64 is not installed"
        modes = [m for m in modes if m not in QEMU_MODES]

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="engram-mig-", dir=args.tmpdir)
    samples = {mode: [] for mode in modes}
    errors = {mode: [] for mode in modes}
    bench = Bench(args, tmp)
    try:
        for run in range(args.warmup + args.runs):
            for mode in modes:
                recorded = run >= args.warmup
                label = f"run {run - args.warmup}" if recorded else f"warm-up {run}"
                try:
                    sample = bench.one(mode)
                except Exception as error:  # recorded; one failed run does not end the bench
                    if "GUEST MEMORY DIFFERS" in str(error) or mode in ENGRAM_MODES:
                        print(f"   {label} {mode}: FAILED: {error}", file=sys.stderr, flush=True)
                    else:
                        print(f"   {label} {mode}: failed: {error}", file=sys.stderr, flush=True)
                    if recorded:
                        errors[mode].append((run - args.warmup, str(error)))
                    continue
                if recorded:
                    samples[mode].append(sample)
                shown = {k: round(v, 2) if isinstance(v, float) else v for k, v in sample.items()
                         if k in ("total_ms", "downtime_ms", "guest_visible_ms", "bytes_sent", "passes", "tick_step", "bytes_over_touched")}
                print(f"   {label} {mode}: {json.dumps(shown)}", file=sys.stderr, flush=True)
    finally:
        for process in list(PROCESSES):
            if process.poll() is None:
                process.kill()
            process.wait()
        shutil.rmtree(tmp, ignore_errors=True)
        for name in os.listdir(args.shared_dir) if os.path.isdir(args.shared_dir) else []:
            if name.startswith(f"engram-bench-migration-{os.getpid()}-"):
                os.unlink(os.path.join(args.shared_dir, name))

    for mode in QEMU_MODES:
        if mode in samples and not samples[mode] and errors[mode]:
            qemu_errors[mode] = errors[mode][0][1]
    try:
        qemu_version = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True,
                                      timeout=30).stdout.split("\n")[0].replace("QEMU emulator version ", "")
    except (OSError, subprocess.SubprocessError):
        qemu_version = "7.2 (not found on this host)"
    normal = [s["normal_gap_ms"] for m in samples for s in samples[m] if s.get("normal_gap_ms")]
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": f"{platform.node()} ({os.cpu_count()} CPUs, kernel {platform.release()})",
        "machine_notes": "KVM here is PVM (kvm_pvm, no hardware virtualization): guest ring 0 is emulated, ring 3 runs "
                         "natively; 2 cores, 24 GiB, shared with other work (noisy), hence medians.",
        "build_note": build_note(), "qemu_version": qemu_version, "openssl": subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip(),
        "memory": args.memory, "fill_mib": args.fill_mib, "dirty_mib_s": args.dirty, "heartbeat_ms": args.heartbeat_ms,
        "max_downtime_ms": args.max_downtime_ms, "settle_seconds": args.settle, "runs": args.runs, "warmup": args.warmup,
        "cmdline": bench.cmdline, "fill_digest": bench.fill_digest, "shared_dir": args.shared_dir,
        "normal_gap_ms": round(statistics.median(normal), 2) if normal else None,
        "qemu_errors": qemu_errors, "errors_by_run": {m: e for m, e in errors.items() if e},
        "samples": samples,
    }
    compute(result)
    with open(args.output + ".json", "w") as out:
        json.dump(result, out, indent=2)
        out.write("\n")
    with open(args.output + ".md", "w") as out:
        out.write(report(result))
    print(json.dumps({mode: {k: (entry.get(k) or {}).get("median") for k in ("total_ms", "downtime_ms", "guest_visible_ms", "bytes_sent")}
                      for mode, entry in result["modes"].items()}, indent=2))
    print(json.dumps(result["verdicts"], indent=2, ensure_ascii=False))
    return 1 if any(e for m, e in errors.items() if m in ENGRAM_MODES) else 0


if __name__ == "__main__":
    sys.exit(main())
