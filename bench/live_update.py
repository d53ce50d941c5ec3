#!/usr/bin/env python3
"""Live update: guest downtime while Engram replaces its own binary under a running guest.

For each guest size (test kernel, cpus=1; by default 1 GiB with 512 MiB filled and 8 GiB with
4 GiB filled, `fill <MiB> 7; heartbeat 10` on the command line, so the guest prints `TICK <n>`
every 10 ms of its own time):

1. Boot `engram run ... --api-socket S` (guest RAM in a memfd) and wait for the FILL line (its
   digest is kept) and the first TICK lines.
2. Live update: one unrecorded warm-up `engram update S`, then N more (the same binary each time;
   PUT /vm/update: pause, save state, exec, re-map the same guest memory, resume; the command prints
   GET /vm/update). For each: the VMM's own `last.downtime_milliseconds`, and the guest-visible
   downtime: the VM's console is read from a pipe, unbuffered, the whole time (also while
   `engram update` runs), and each TICK line gets the host's monotonic time of its arrival. The
   largest gap between consecutive TICK lines, from the last one before the command started to
   100 ms after it returned, minus the median gap between TICK lines just before the update.
   The guest's PIT does not run while the guest is paused and resumes where it stopped, so the
   pause adds exactly its length to one tick interval, and the TICK number goes up by 1 across
   the gap (checked and recorded).
3. After the updates: `digest` typed on the console must print the FILL digest (guest memory
   unchanged), and the VMM's pid must be the one started (same process throughout).
4. For scale, snapshot and restore through the snapshot issue's fastest mode, M times:
   `engram snapshot S FILE --stay-paused`, stop the old VMM (SIGTERM), then
   `engram restore FILE --memory map --api-socket S2` until its first TICK. Downtime = host time of
   the restored guest's first TICK - host time of the old guest's last TICK - the nominal 10 ms
   tick interval. The restored VM is the one snapshotted next; the last one must print the FILL
   digest too.

Writes docs/results/live_update.md and docs/results/live_update.json.
"""
import argparse, json, os, platform, re, shutil, signal, subprocess, sys, tempfile, time
from datetime import datetime, timezone

from benchlib import PROCESSES, Child, ChildFailed, EchoStream, Namespace, die_with_parent, median_gap_ms, summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL = os.path.join(ROOT, "guest/build/engram-test-kernel.elf")
MIB = 1 << 20
FILL = re.compile(rb"FILL mib=(\d+) seed=(\d+) digest=([0-9a-f]{16})|(?:ERROR|PANIC) [^\r\n]*")
DIGEST = re.compile(rb"DIGEST mib=(\d+) digest=([0-9a-f]{16})|(?:ERROR|PANIC) [^\r\n]*")
NOMINAL_TICK_MS = 10.0  # heartbeat 10 at the test kernel's 100 Hz tick
AFTER_WINDOW = 0.1      # seconds of TICK lines looked at after `engram update` returns
TARGET_MS = 20.0
ECHO_PORT = 7777
GUEST_MAC = "52:54:00:00:00:02"
def engram_json(args, *command, timeout=120):
    try:
        done = subprocess.run([args.engram, *command], capture_output=True, text=True, timeout=timeout,
                              preexec_fn=die_with_parent)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timeout ({timeout} s): engram {' '.join(command)}") from None
    if done.returncode != 0:
        raise RuntimeError(f"engram {' '.join(command)} exited with {done.returncode}: {done.stderr.strip()}")
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise RuntimeError(f"engram {' '.join(command)}: not JSON on stdout: {done.stdout[:500]!r}") from None


def run_while_pumping(vm, command, timeout, what):
    """Runs an engram client command while reading the VM's console; (start, end, its JSON answer)."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=die_with_parent)
    PROCESSES.append(process)
    try:
        deadline = started + timeout
        while process.poll() is None:  # its output is a few hundred bytes: the pipes cannot fill up
            if time.monotonic() > deadline:
                raise RuntimeError(f"timeout ({timeout:g} s): {what}: {vm.tail()}")
            if not vm.pump(0.002) or (vm.process.poll() is not None and not vm.handed_over):
                raise ChildFailed(vm)
        finished = time.monotonic()
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        PROCESSES.remove(process)
    if process.returncode != 0:
        raise RuntimeError(f"{what} exited with {process.returncode}: {err.strip()} | VMM: {vm.tail()}")
    try:
        return started, finished, json.loads(out)
    except ValueError:
        raise RuntimeError(f"{what} printed no JSON: {out[:500]!r} {err[:300]!r}") from None


def tick_steps(ticks):
    """{step: count} of consecutive TICK numbers; raises if a TICK number ever goes backward."""
    steps = {}
    for (t0, a), (t1, b) in zip(ticks, ticks[1:]):
        if b < a:
            raise RuntimeError(f"TICK numbers went backward: TICK {a} then TICK {b} ({(t1 - t0) * 1000:.1f} ms later)")
        steps[b - a] = steps.get(b - a, 0) + 1
    return {str(k): v for k, v in sorted(steps.items())}


class SizeBench:
    def __init__(self, args, tmp, memory, fill_mib):
        self.args, self.tmp, self.memory, self.fill_mib = args, tmp, memory, fill_mib
        self.tag = memory.lower()
        self.network = args.network  # a Namespace with tap "lu", or None
        self.address = f"{self.network.subnet}.2" if self.network else None
        network = f" ip={self.address}/24 udp_echo={ECHO_PORT}" if self.network else ""
        self.cmdline = f"cpus=1{network} -- fill {fill_mib} 7; heartbeat 10"
        self.echoes = None
        self.sequence = 0
        self.missing_fields = set()
        self.update_answer = None

    def socket_path(self, what):
        self.sequence += 1
        return os.path.join(self.tmp, f"{what}-{self.tag}-{self.sequence}.sock")

    def check_digest(self, vm, fill_digest, when):
        vm.scanned = len(vm.out)
        vm.type_line("digest")
        _, match = vm.wait_for(DIGEST, self.args.digest_timeout, f"the DIGEST line {when}")
        if not match.group(2):
            raise RuntimeError(f"guest error {when}: {match.group(0).decode(errors='replace')}")
        digest = match.group(2).decode()
        if digest != fill_digest:
            raise RuntimeError(f"GUEST MEMORY CHANGED {when}: DIGEST {digest} != FILL digest {fill_digest} "
                               f"({self.memory}, fill {self.fill_mib} MiB)")
        return digest

    def field(self, answer, container, key):
        value = container.get(key) if isinstance(container, dict) else None
        if value is None and key not in self.missing_fields:
            self.missing_fields.add(key)
            print(f"   note: `engram update` answer has no {key!r}; it said: {json.dumps(answer)}", file=sys.stderr, flush=True)
        return value

    # --- live update -------------------------------------------------------------------------
    def one_update(self, vm, api, expected_count, mode="exec"):
        args = self.args
        # Normal TICK gaps just before the update.
        first = len(vm.ticks)
        vm.pump_for(args.settle)
        before = vm.ticks[first:]
        if len(before) < 5:
            raise RuntimeError(f"only {len(before)} TICK lines in {args.settle:g} s before the update "
                               f"(heartbeat not running?): {vm.tail()}")
        normal_ms = median_gap_ms(before)
        start_index = len(vm.ticks) - 1  # the last TICK received before the update started
        command = [args.engram, "update", api] + (["--binary", args.update_binary] if args.update_binary else []) + ["--mode", mode]
        if mode == "transfer":
            vm.handed_over = True  # the process it started with ends during the command
        started, finished, answer = run_while_pumping(vm, command, args.update_timeout, f"engram update {api}")
        if not isinstance(answer, dict):
            raise RuntimeError(f"engram update printed JSON that is not an object: {answer!r}")
        self.update_answer = answer
        # TICK lines up to 100 ms after the command returned, and at least one after it.
        vm.pump_until(lambda: time.monotonic() >= finished + AFTER_WINDOW and vm.ticks[-1][0] > finished,
                      args.update_timeout, "a TICK line after the update")
        end = max(finished + AFTER_WINDOW, next(t for t, _ in vm.ticks[start_index:] if t > finished))
        window = [tick for tick in vm.ticks[start_index:] if tick[0] <= end]
        gaps = [(b[0] - a[0], a, b) for a, b in zip(window, window[1:])]
        gap, tick_before, tick_after = max(gaps)
        # From the command's start: the TICK line's arrival time can lag the pause it preceded.
        outage_ms, lost = self.echoes.outage(started, end) if self.echoes else (None, None)
        if tick_after[1] < tick_before[1]:
            raise RuntimeError(f"TICK number went backward across the update: {tick_before[1]} -> {tick_after[1]}")

        last = answer.get("last") if isinstance(answer.get("last"), dict) else {}
        statuses = f"{answer.get('status', '')} {last.get('status', '')}".lower()
        if "fail" in statuses or "error" in statuses:
            raise RuntimeError(f"engram update exited 0 but says: {json.dumps(answer)}")
        pid = self.field(answer, answer, "pid")
        if mode == "exec" and pid is not None and pid != self.pid:
            raise RuntimeError(f"the VMM's pid changed: it was {self.pid}, update says {pid}")
        if mode == "transfer":
            if pid is None or pid == self.pid:
                raise RuntimeError(f"a transfer-mode update kept pid {self.pid}: {json.dumps(answer)}")
            self.pid = pid  # the VM runs in the new process now
            vm.handed_over = True
        if not alive(self.pid):
            raise RuntimeError(f"the VMM (pid {self.pid}) is gone after the update: {vm.tail()}")
        count = self.field(answer, answer, "updates_completed")
        if count is not None and count != expected_count:
            print(f"   note: updates_completed = {count}, expected {expected_count}", file=sys.stderr, flush=True)
        stderr_lines = [line for when, line in vm.stderr_lines if started <= when <= end]
        return {
            "vmm_downtime_ms": self.field(answer, last, "downtime_milliseconds"),
            "vmm_save_ms": last.get("save_milliseconds"),
            "vmm_restore_ms": last.get("restore_milliseconds"),
            "guest_visible_ms": gap * 1000 - normal_ms,
            "udp_outage_ms": outage_ms,
            "udp_lost": lost,
            "largest_gap_ms": gap * 1000,
            "normal_gap_ms": normal_ms,
            "command_ms": (finished - started) * 1000,
            "tick_before": tick_before[1], "tick_after": tick_after[1], "tick_step": tick_after[1] - tick_before[1],
            "gap_started_after_command_start_ms": (tick_before[0] - started) * 1000,
            "gap_ended_after_command_exit_ms": (tick_after[0] - finished) * 1000,
            "updates_completed": count,
            "vmm_stderr": stderr_lines[:6],
        }

    def live_updates(self, vm, api, fill_digest, mode="exec", done=0):
        first_tick = len(vm.ticks)
        self.one_update(vm, api, done + 1, mode)  # warm-up, not recorded
        samples = [self.one_update(vm, api, done + run + 2, mode) for run in range(self.args.runs)]
        for sample in samples:
            udp = f", UDP echo outage {sample['udp_outage_ms']:.1f} ms, {sample['udp_lost']} lost" if self.echoes else ""
            print(f"   update: VMM {sample['vmm_downtime_ms']} ms, guest-visible {sample['guest_visible_ms']:.1f} ms "
                  f"(gap {sample['largest_gap_ms']:.1f} ms, step {sample['tick_step']}){udp}", file=sys.stderr, flush=True)
        steps = tick_steps(vm.ticks[first_tick:])
        tick_lines = len(vm.ticks) - first_tick
        digest = self.check_digest(vm, fill_digest, f"after {self.args.runs + 1} live updates ({mode})")
        if not alive(self.pid):
            raise RuntimeError(f"the VMM (pid {self.pid}) is gone: {vm.tail()}")
        answer = self.update_answer or {}
        return {
            "mode": mode,
            "runs": len(samples),
            "vmm_downtime_ms": summary([s["vmm_downtime_ms"] for s in samples]),
            "guest_visible_ms": summary([s["guest_visible_ms"] for s in samples]),
            "udp_outage_ms": summary([s["udp_outage_ms"] for s in samples]) if self.echoes else None,
            "udp_lost": [s["udp_lost"] for s in samples] if self.echoes else None,
            "largest_gap_ms": summary([s["largest_gap_ms"] for s in samples]),
            "normal_gap_ms": summary([s["normal_gap_ms"] for s in samples]),
            "command_ms": summary([s["command_ms"] for s in samples]),
            "vmm_save_ms": summary([s["vmm_save_ms"] for s in samples]),
            "vmm_restore_ms": summary([s["vmm_restore_ms"] for s in samples]),
            "tick_steps_across_gap": [s["tick_step"] for s in samples],
            "tick_steps_whole_phase": steps,
            "tick_lines": tick_lines,
            "digest_after": digest,
            "pid": self.pid,
            "pid_unchanged": mode == "exec" and answer.get("pid") in (None, self.pid),
            "updates_completed": answer.get("updates_completed"),
            "version": answer.get("version"),
            "binary": answer.get("binary"),
            "last_answer": answer,
            "missing_fields": sorted(self.missing_fields),
            "samples": samples,
        }

    def stop_current(self, vm):
        """Ends the VMM running the guest: the one spawned, or the one a transfer-mode update started."""
        if self.pid == vm.process.pid:
            vm.stop()
            return
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.005)
        vm.stop()

    # --- snapshot and restore, for scale -------------------------------------------------------
    def snapshot_restores(self, vm, api, fill_digest):
        args = self.args
        samples = []
        previous_snapshot = None
        try:
            for run in range(args.restore_runs):
                first = len(vm.ticks)
                vm.pump_until(lambda: len(vm.ticks) >= first + 3, 30, "TICK lines before the snapshot")
                path = os.path.join(self.tmp, f"{self.tag}-{run}.snap")
                # The console is read while the snapshot runs, so the last TICK before the pause gets its real time.
                started, snapshotted, answer = run_while_pumping(
                    vm, [args.engram, "snapshot", api, path, "--stay-paused"], args.snapshot_timeout, f"engram snapshot {api}")
                vm.pump_for(0.05)  # whatever the guest printed before the pause
                last_old = vm.ticks[-1]
                late = [t for t, _ in vm.ticks if t > snapshotted + 0.02]
                if late:
                    raise RuntimeError("TICK lines after `engram snapshot --stay-paused` returned: the VM was not paused")
                self.stop_current(vm)
                stopped = time.monotonic()
                if previous_snapshot:
                    os.unlink(previous_snapshot)  # only the VMM just stopped had it mapped
                previous_snapshot = path
                api = self.socket_path("restore")
                vm = Child([args.engram, "restore", path, "--memory", "map", "--api-socket", api])
                self.pid = vm.process.pid
                vm.pump_until(lambda: vm.ticks, args.restore_timeout, "the first TICK after restore")
                first_new = vm.ticks[0]
                try:
                    restore_ms = engram_json(args, "ctl", api, "get", "/vm/memory/stats").get("restore", {}).get("restore_milliseconds")
                except (RuntimeError, AttributeError):
                    restore_ms = None
                if first_new[1] < last_old[1]:
                    raise RuntimeError(f"TICK number went backward across the restore: {last_old[1]} -> {first_new[1]}")
                duration = answer.get("duration_seconds")
                sample = {
                    "snapshot_command_ms": (snapshotted - started) * 1000,
                    "snapshot_vmm_ms": None if duration is None else duration * 1000,
                    "bytes_written": answer.get("bytes_written"),
                    "stop_ms": (stopped - snapshotted) * 1000,
                    "spawn_to_tick_ms": (first_new[0] - vm.started) * 1000,
                    "restore_vmm_ms": restore_ms,
                    "gap_ms": (first_new[0] - last_old[0]) * 1000,
                    "downtime_ms": (first_new[0] - last_old[0]) * 1000 - NOMINAL_TICK_MS,
                    "tick_before": last_old[1], "tick_after": first_new[1], "tick_step": first_new[1] - last_old[1],
                }
                print(f"   snapshot+restore: downtime {sample['downtime_ms']:.1f} ms (snapshot {sample['snapshot_command_ms']:.1f} ms, "
                      f"restore → TICK {sample['spawn_to_tick_ms']:.1f} ms, step {sample['tick_step']})", file=sys.stderr, flush=True)
                samples.append(sample)
            steps = tick_steps(vm.ticks)
            digest = self.check_digest(vm, fill_digest, f"after {args.restore_runs} snapshot+restore rounds")
        finally:
            vm.stop()
            if previous_snapshot and os.path.exists(previous_snapshot):
                os.unlink(previous_snapshot)
        return {
            "runs": len(samples),
            "mode": "map",
            "snapshot_command_ms": summary([s["snapshot_command_ms"] for s in samples], 1),
            "snapshot_vmm_ms": summary([s["snapshot_vmm_ms"] for s in samples], 1),
            "bytes_written": samples[-1]["bytes_written"] if samples else None,
            "stop_ms": summary([s["stop_ms"] for s in samples], 1),
            "spawn_to_tick_ms": summary([s["spawn_to_tick_ms"] for s in samples]),
            "restore_vmm_ms": summary([s["restore_vmm_ms"] for s in samples]),
            "downtime_ms": summary([s["downtime_ms"] for s in samples], 1),
            "tick_steps_across_gap": [s["tick_step"] for s in samples],
            "tick_steps_last_vm": steps,
            "digest_after": digest,
            "samples": samples,
        }

    def run(self):
        args = self.args
        print(f"== {self.memory}, fill {self.fill_mib} MiB", file=sys.stderr, flush=True)
        api = self.socket_path("run")
        net = ["--net", f"tap={self.network.taps['lu']},mac={GUEST_MAC}"] if self.network else []
        vm = Child([args.engram, "run", "--kernel", KERNEL, "--memory", self.memory, "--cpus", "1",
                    "--cmdline", self.cmdline, "--api-socket", api, *net])
        try:
            _, match = vm.wait_for(FILL, args.boot_timeout, "the FILL line")
            if not match.group(3):
                raise RuntimeError(f"guest error at boot: {match.group(0).decode(errors='replace')}")
            fill_digest = match.group(3).decode()
            vm.pump_until(lambda: len(vm.ticks) >= 5, 30, "the first TICK lines")
            self.pid = vm.process.pid
            if self.network:
                self.echoes = EchoStream(self.address, ECHO_PORT)
                self.echoes.wait_for_echoes(100, 30)
            live = self.live_updates(vm, api, fill_digest)
            print(f"   live update: {json.dumps({k: v for k, v in live.items() if k not in ('samples', 'last_answer')})}",
                  file=sys.stderr, flush=True)
            transfer = self.live_updates(vm, api, fill_digest, mode="transfer", done=args.runs + 1)
            print(f"   live update (transfer): {json.dumps({k: v for k, v in transfer.items() if k not in ('samples', 'last_answer')})}",
                  file=sys.stderr, flush=True)
            if self.echoes:
                self.echoes.stop()
            restore = self.snapshot_restores(vm, api, fill_digest)  # stops vm
            print(f"   snapshot+restore: {json.dumps({k: v for k, v in restore.items() if k != 'samples'})}",
                  file=sys.stderr, flush=True)
        finally:
            if self.echoes:
                self.echoes.stop()
            vm.stop()
            if alive(self.pid):
                os.kill(self.pid, signal.SIGKILL)
        live_ms = (live["guest_visible_ms"] or {}).get("median")
        restore_ms = (restore["downtime_ms"] or {}).get("median")
        return {"memory": self.memory, "fill_mib": self.fill_mib, "cmdline": self.cmdline, "fill_digest": fill_digest,
                "live_update": live, "live_update_transfer": transfer, "snapshot_restore": restore,
                "restore_over_live": round(restore_ms / live_ms, 1) if live_ms and restore_ms and live_ms > 0.5 else None}


TRANSFER_TARGET_MS = 5.0


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def med(entry):
    return entry.get("median") if entry else None


def fmt(value, unit=" ms", digits=1):
    return "missing" if value is None else f"{value:.{digits}f}{unit}"


def row(label, entry, digits=1):
    if not entry:
        return f"| {label} | missing | | |"
    return f"| {label} | **{fmt(entry['median'], '', digits)}** | {fmt(entry['min'], '', digits)} | {fmt(entry['max'], '', digits)} |"


def udp_row(entry):
    if not entry.get("udp_outage_ms"):
        return ""
    lost = sum(entry.get("udp_lost") or [])
    return row(f"**guest-visible downtime, as a UDP client sees it** (largest gap between echoes − 1 ms; {lost} lost in all runs)",
               entry["udp_outage_ms"]) + "\n"


def udp_runs(entry):
    if not entry.get("udp_outage_ms"):
        return ""
    return f"as a UDP client sees it {', '.join(map(str, entry['udp_outage_ms'].get('all', [])))};\n"


def guest_visible(entry):
    """The guest-visible downtime median and what it is: the UDP echo outage where the bench had a network
    (what a client of the guest sees, whatever the guest's timers do), else the TICK-line figure."""
    udp = med(entry.get("udp_outage_ms"))
    if udp is not None:
        return udp, "as a UDP client sees it"
    return med(entry["guest_visible_ms"]), "from TICK lines"


def report(result):
    verdicts, sections = [], []
    sizes = result["sizes"]
    for size in sizes:
        live = size["live_update"]
        (guest, how), ticks, vmm = guest_visible(live), med(live["guest_visible_ms"]), med(live["vmm_downtime_ms"])
        verdicts.append(f"- Downtime ≤ {TARGET_MS:.0f} ms, {size['memory']}: " +
                        ("**missing**" if guest is None else
                         f"**{'met' if guest <= TARGET_MS else 'not met'}** ({guest:.1f} ms guest-visible median {how}; "
                         f"from TICK lines {fmt(ticks)}; VMM-reported {fmt(vmm, ' ms', 2)})."))
    for size in sizes:
        transfer = size.get("live_update_transfer")
        if transfer:
            (guest, how), ticks, vmm = guest_visible(transfer), med(transfer["guest_visible_ms"]), med(transfer["vmm_downtime_ms"])
            verdicts.append(f"- Transfer mode (`engram update --mode transfer`) downtime ≤ {TRANSFER_TARGET_MS:.0f} ms guest-visible, {size['memory']}: " +
                            ("**missing**" if guest is None else
                             f"**{'met' if guest <= TRANSFER_TARGET_MS else 'not met'}** ({guest:.1f} ms guest-visible median {how}; "
                             f"from TICK lines {fmt(ticks)}; VMM-reported {fmt(vmm, ' ms', 2)})."))
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        (a, how), (b, _) = guest_visible(small["live_update"]), guest_visible(large["live_update"])
        va, vb = med(small["live_update"]["vmm_downtime_ms"]), med(large["live_update"]["vmm_downtime_ms"])
        if a and b and a > 0 and b > 0:
            ratio = b / a
            met = (1 / 1.25 <= ratio <= 1.25) or abs(b - a) <= 3
            vmm_ratio = f"; VMM-reported {vb / va:.2f}" if va and vb else ""
            verdicts.append(f"- Same for both sizes: {large['memory']} / {small['memory']} ratio of medians = {ratio:.2f} "
                            f"({b:.1f} vs {a:.1f} ms guest-visible {how}{vmm_ratio}): **{'met' if met else 'not met'}** "
                            f"(met within 1.25× or 3 ms).")
        else:
            verdicts.append("- Same for both sizes: **missing** (no guest-visible median for one size).")

    for size in sizes:
        live, sr = size["live_update"], size["snapshot_restore"]
        across = live["tick_steps_across_gap"]
        steps_note = ("1 in every run: the guest's tick count did not move while it was paused" if across and all(s == 1 for s in across)
                      else f"{', '.join(map(str, across))} (1 = the guest's clock did not see the pause)")
        missing = (f"\nFields missing from `engram update`'s answer: {', '.join(live['missing_fields'])}. "
                   f"Last answer: `{json.dumps(live['last_answer'])}`.\n" if live.get("missing_fields") else "")
        ratio = size.get("restore_over_live")
        transfer = size.get("live_update_transfer")
        transfer_rows = "" if not transfer else f"""
| live update, `engram update --mode transfer` ({transfer['runs']} runs, after the exec-mode ones) | median (ms) | min | max |
|---|---|---|---|
{row("downtime reported by the VMM (`last.downtime_milliseconds`)", transfer['vmm_downtime_ms'], 2)}
{udp_row(transfer)}{row("guest-visible downtime from TICK lines (largest TICK gap − normal gap)", transfer['guest_visible_ms'])}
{row("VMM: saving state in the old process (`save_milliseconds`)", transfer['vmm_save_ms'], 2)}
{row("VMM: new process, state arrived → vCPUs started (`restore_milliseconds`)", transfer['vmm_restore_ms'], 2)}
{row("`engram update --mode transfer` command, spawn → exit", transfer['command_ms'])}

Each transfer starts a new VMM process (the VM's pid changes every time; the last was {transfer['pid']}); the guest's
`digest` after them is {transfer['digest_after']}; TICK steps across the gaps: {', '.join(map(str, transfer['tick_steps_across_gap']))}.
All runs (ms): VMM-reported {', '.join(map(str, (transfer['vmm_downtime_ms'] or {}).get('all', [])))};
{udp_runs(transfer)}from TICK lines {', '.join(map(str, (transfer['guest_visible_ms'] or {}).get('all', [])))}.
"""
        sections.append(f"""## {size['memory']} guest, {size['fill_mib']} MiB filled

| live update, `engram update` ({live['runs']} runs) | median (ms) | min | max |
|---|---|---|---|
{row("downtime reported by the VMM (`last.downtime_milliseconds`)", live['vmm_downtime_ms'], 2)}
{udp_row(live)}{row("guest-visible downtime from TICK lines (largest TICK gap − normal gap)", live['guest_visible_ms'])}
{row("largest gap between TICK lines around the update", live['largest_gap_ms'])}
{row("normal gap between TICK lines (median, just before)", live['normal_gap_ms'])}
{row("VMM: saving state (`save_milliseconds`)", live['vmm_save_ms'], 2)}
{row("VMM: new process, exec → vCPUs started (`restore_milliseconds`)", live['vmm_restore_ms'], 2)}
{row("`engram update` command, spawn → exit", live['command_ms'])}
{transfer_rows}
TICK number step across the largest gap: {steps_note}. Steps between all {live['tick_lines']} TICK lines of the
live-update phase (step: count): {json.dumps(live['tick_steps_whole_phase'])}. After {live['runs'] + 1} updates the guest's
`digest` is {live['digest_after']}, equal to the FILL digest (memory unchanged); the VMM's pid stayed {live['pid']}
(`updates_completed` = {live['updates_completed']}, version {live['version']}).
{missing}
| snapshot + restore, `--memory map` ({sr['runs']} runs) | median (ms) | min | max |
|---|---|---|---|
{row("`engram snapshot --stay-paused` (command)", sr['snapshot_command_ms'])}
{row("snapshot, VMM's `duration_seconds`", sr['snapshot_vmm_ms'])}
{row("stopping the old VMM (SIGTERM → exit)", sr['stop_ms'])}
{row("`engram restore` spawn → first TICK", sr['spawn_to_tick_ms'])}
{row("restore, VMM work (`restore_milliseconds`)", sr['restore_vmm_ms'], 2)}
{row("**downtime** (last TICK of the old VM → first TICK of the restored one − 10 ms)", sr['downtime_ms'])}

Snapshot + restore downtime / live update downtime (guest-visible medians): **{fmt(ratio, '×')}**.
TICK number step across each restore: {', '.join(map(str, sr['tick_steps_across_gap']))}; the last restored guest's `digest`
is {sr['digest_after']}, equal to the FILL digest. Snapshot data written: {fmt((sr['bytes_written'] or 0) / MIB, ' MiB', 0)}.

All runs (ms): VMM-reported {', '.join(map(str, (live['vmm_downtime_ms'] or {}).get('all', [])))};
{udp_runs(live)}from TICK lines {', '.join(map(str, (live['guest_visible_ms'] or {}).get('all', [])))};
snapshot + restore downtime {', '.join(map(str, (sr['downtime_ms'] or {}).get('all', [])))}.
""")
    return f"""# Live update: guest downtime across an Engram binary update

Written by `bench/live_update.py` on {result['date']}, {result['host']}.
{result['machine_notes']}
Engram release build{result['build_note']}. Test kernel, `cpus=1`, command line `fill <MiB> 7; heartbeat 10`, so the
guest prints `TICK <n>` every 10 ms (its 100 Hz PIT tick). Guest RAM in a memfd (`engram run`'s default).
Medians of {result['runs']} live updates per size (after one unrecorded warm-up) and of {result['restore_runs']}
snapshot + restore rounds. Snapshot files live in {result['directory_note']}.

- **Live update**: `engram update SOCKET` (PUT /vm/update, then GET /vm/update): the VMM pauses the guest, saves
  its state, execs the new binary (here the same file; same pid, same console, same control socket), which maps
  the same guest memory and resumes. **VMM-reported** downtime is `last.downtime_milliseconds`: from the moment
  the old process had the vCPUs stopped to the moment the new process started them (CLOCK_MONOTONIC).
  **Guest-visible** downtime, measured two ways:
  - **As a UDP client sees it** (the figure the targets are judged on): the guest has a virtio-net interface on a
    tap in a network namespace of the bench's own and answers UDP echo; a host thread sends it one datagram every
    1 ms the whole time, and each echo gets the host's monotonic time of its arrival. The downtime is the largest
    gap between echoes arriving from the command's start to {AFTER_WINDOW * 1000:.0f} ms after it returned, less
    the 1 ms period; datagrams sent meanwhile that never came back are counted as lost (the tap queues them while
    the guest is paused, so none should be). The guest answers from its virtio-net interrupt, so this figure
    does not depend on its timer.
  - **From TICK lines**: the VM's console is read from a pipe, unbuffered, without pause (also while
    `engram update` runs), and each `TICK` line gets the host's monotonic time of its arrival. It is the largest
    gap between consecutive TICK lines, from the last one before the command started to {AFTER_WINDOW * 1000:.0f} ms
    after it returned, minus the median gap between TICK lines in the {result['settle_seconds']:g} s just before
    the update (≈ 10 ms). The guest's PIT does not run while it is paused (its state is saved and restored with
    the rest of the machine), so the TICK number goes up by 1 across the gap (checked: a TICK number going
    backward fails the bench). But this figure adds up to one tick period to the pause: KVM's KVM_SET_PIT2
    restarts the PIT's period when the state is loaded, so the first tick after the update comes a whole period
    after the load, not the rest of the period the guest was in when it paused (QEMU and Firecracker load the
    in-kernel PIT the same way). Linux guests keep time with kvmclock and the TSC-deadline timer, whose state
    is absolute and does not move this way.
  After the updates the bench types `digest` on the console and fails unless it equals the FILL digest; it also
  fails if the VMM's pid changed.
- **Snapshot + restore, for scale** (the snapshot issue's fastest mode, `--memory map`):
  `engram snapshot SOCKET FILE --stay-paused`, SIGTERM to the old VMM (wait for its exit), then
  `engram restore FILE --memory map --api-socket S2`. Downtime = host time of the restored guest's first TICK −
  host time of the old guest's last TICK − the nominal 10 ms tick interval. Each restored VM is the one snapshotted
  in the next round; the last one must print the FILL digest too.
- **QEMU**: no figure. Debian's QEMU {result['qemu_version']} has no CPR (CheckPoint and Restart: `cpr-reboot` came
  in QEMU 8.2, `cpr-transfer` in 10.0), so it cannot replace its own binary under a running guest; the nearest
  it has is the migrate-to-file and `-incoming` pair measured in `snapshot_restore.md`.

- **Transfer mode** (`engram update SOCKET --mode transfer`, after the exec-mode runs, on the same VM): the new
  binary starts beside the running VMM, is handed guest memory over a socket pair (SCM_RIGHTS), maps it and makes
  its VM, memory slots and vCPUs while the guest runs; only then does the old VMM pause the guest and send the
  machine state (as a snapshot's section container) and devices; the control socket went with the memory, so the
  new VMM's control server is ready, not yet accepting, before the pause. The new VMM starts the vCPUs and the
  old one ends. Downtime is measured the same ways. The VM's pid changes with each transfer.

Targets: downtime ≤ {TARGET_MS:.0f} ms (guest-visible), and the same for both sizes; transfer mode ≤ {TRANSFER_TARGET_MS:.0f} ms
guest-visible at both sizes (issue 22).

{chr(10).join(verdicts)}

{chr(10).join(sections)}"""


def build_note(update_version):
    note = ""
    if update_version:
        note += f", `engram` version {update_version}"
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
    parser.add_argument("--runs", type=int, default=9, help="recorded live updates per size (after one warm-up)")
    parser.add_argument("--restore-runs", type=int, default=3, help="snapshot + restore rounds per size")
    parser.add_argument("--sizes", default="1G:512,8G:4096", help="comma-separated MEMORY:FILL_MIB")
    parser.add_argument("--settle", type=float, default=0.5, help="seconds of TICK lines read before each update (normal gap)")
    parser.add_argument("--engram", default=os.path.join(ROOT, ".build/release/engram"))
    parser.add_argument("--update-binary", help="pass --binary PATH to `engram update` (default: the running binary)")
    parser.add_argument("--tmpdir", default="/var/tmp", help="where snapshots go (not tmpfs)")
    parser.add_argument("--boot-timeout", type=float, default=600, help="seconds to wait for the FILL line")
    parser.add_argument("--update-timeout", type=float, default=60, help="seconds for one `engram update`")
    parser.add_argument("--snapshot-timeout", type=float, default=600, help="seconds for one `engram snapshot`")
    parser.add_argument("--restore-timeout", type=float, default=120, help="seconds from restore spawn to its first TICK")
    parser.add_argument("--digest-timeout", type=float, default=600, help="seconds for the guest's `digest`")
    parser.add_argument("--output", default=os.path.join(ROOT, "docs/results/live_update"))
    parser.add_argument("--report-only", action="store_true", help="rewrite OUTPUT.md from OUTPUT.json, run nothing")
    parser.add_argument("--no-network", action="store_true",
                        help="no virtio-net interface and no UDP echo stream (the network-visible outage is not measured)")
    args = parser.parse_args()
    args.engram = os.path.abspath(args.engram)
    if args.report_only:
        with open(args.output + ".json") as saved:
            result = json.load(saved)
        with open(args.output + ".md", "w") as out:
            out.write(report(result))
        return 0

    specs = []
    for spec in args.sizes.split(","):
        memory, fill = spec.split(":")
        specs.append((memory.strip(), int(fill)))
    for path in (args.engram, KERNEL):
        if not os.path.exists(path):
            raise SystemExit(f"live_update.py: {path} does not exist (bench/run.sh builds both)")
    free = shutil.disk_usage(args.tmpdir).free
    needed = 2 * max(fill for _, fill in specs) * MIB + 512 * MIB  # two snapshots exist at once
    if free < needed:
        raise SystemExit(f"live_update.py: {args.tmpdir} has {free / MIB:.0f} MiB free, needs about {needed / MIB:.0f} MiB")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="engram-lu-", dir=args.tmpdir)
    # The guest answers UDP on a tap in a namespace of the bench's own (the bench enters it).
    args.network = None if args.no_network else Namespace(("lu",))
    try:
        if args.network:
            args.network.neighbour(f"{args.network.subnet}.2", GUEST_MAC)
        sizes = [SizeBench(args, tmp, memory, fill).run() for memory, fill in specs]
        fs = subprocess.run(["df", "--output=fstype,source", tmp], capture_output=True, text=True).stdout.split("\n")[1].split()
    finally:
        for process in list(PROCESSES):
            if process.poll() is None:
                process.kill()
            process.wait()
        shutil.rmtree(tmp, ignore_errors=True)
        if args.network:
            args.network.close()

    try:
        qemu_version = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True,
                                      timeout=30).stdout.split("\n")[0].replace("QEMU emulator version ", "")
    except (OSError, subprocess.SubprocessError):
        qemu_version = "7.2 (not found on this host)"
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": f"{platform.node()} ({os.cpu_count()} CPUs, kernel {platform.release()})",
        "machine_notes": "KVM here is PVM (kvm_pvm, no hardware virtualization): guest ring 0 is emulated, ring 3 runs "
                         "natively; 2 cores, 24 GiB, shared with other work (noisy), hence medians.",
        "build_note": build_note(sizes[0]["live_update"].get("version")),
        "qemu_version": qemu_version or "7.2",
        "directory_note": f"{args.tmpdir} ({fs[0]} on {fs[1]})" if len(fs) >= 2 else args.tmpdir,
        "runs": args.runs, "restore_runs": args.restore_runs, "settle_seconds": args.settle, "sizes": sizes,
    }
    with open(args.output + ".json", "w") as out:
        json.dump(result, out, indent=2)
        out.write("\n")
    with open(args.output + ".md", "w") as out:
        out.write(report(result))
    print(json.dumps({size["memory"]: {"live_update_guest_visible_ms": size["live_update"]["guest_visible_ms"],
                                       "live_update_vmm_ms": size["live_update"]["vmm_downtime_ms"],
                                       "snapshot_restore_downtime_ms": size["snapshot_restore"]["downtime_ms"]}
                      for size in sizes}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
