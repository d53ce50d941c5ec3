"""What the benchmarks that drive VMs share: a child process read unbuffered from pipes and
killed with the bench (PR_SET_PDEATHSIG), with its console's TICK lines and its stderr lines
timed as they arrive; pumping several children at once; a small QMP client; JSON from
`engram` commands; and summaries of samples."""
import ctypes, http.client, json, os, random, re, select, signal, socket, statistics, subprocess, time

LIBC = ctypes.CDLL(None, use_errno=True)
PROCESSES = []  # every child still to be reaped, killed at the end of a bench
TICK_LINE = re.compile(rb"(?:^|\n)TICK (\d+)\r")


def die_with_parent():
    LIBC.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no VM outlives the bench (kept across exec)


class ChildFailed(RuntimeError):
    """A child that exited while the bench waited for it, with the tail of what it said."""

    def __init__(self, child):
        self.child = child
        try:
            self.status = child.process.wait(5)
        except subprocess.TimeoutExpired:
            self.status = None
        tail = child.err.decode(errors="replace").strip().splitlines()[-3:]
        super().__init__(f"{child.name} exited with {self.status}: {' | '.join(tail)} ({child.out[-200:]!r})")


class Child:
    """A process with stdout (the guest console) and stderr on pipes, read unbuffered.

    Every complete `TICK <n>` console line is recorded in `ticks` as (host monotonic time of
    arrival, n); every complete stderr line in `stderr_lines` as (time of arrival, line)."""

    def __init__(self, command, name=None):
        self.command = command
        self.name = name or " ".join([os.path.basename(command[0]), *command[1:2]])
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        preexec_fn=die_with_parent)
        PROCESSES.append(self.process)
        self.out, self.err = b"", b""
        self.scanned = self.tick_scanned = 0
        self.ticks = []
        self.stderr_lines = []
        # Set once the process handed its work to another that shares its pipes.
        self.handed_over = False

    def streams(self):
        return [s for s in (self.process.stdout, self.process.stderr) if not s.closed]

    def take(self, stream, now):
        """Reads what one ready pipe holds."""
        data = os.read(stream.fileno(), 1 << 16)
        if not data:
            stream.close()
        elif stream is self.process.stdout:
            self.out += data
            while True:
                match = TICK_LINE.search(self.out, self.tick_scanned)
                if not match:
                    break
                self.ticks.append((now, int(match.group(1))))
                self.tick_scanned = match.end()
        else:
            start = self.err.rfind(b"\n") + 1
            self.err += data
            for line in self.err[start:].split(b"\n")[:-1]:  # complete lines; the rest comes with the next read
                self.stderr_lines.append((now, line.decode(errors="replace").strip()))

    def pump(self, timeout):
        """Reads whatever arrives within `timeout`; False once both pipes are closed."""
        return pump([self], timeout)

    def tail(self):
        return f"console tail {self.out[-300:]!r}, stderr tail {self.err[-500:]!r}"

    def pump_until(self, condition, timeout, what):
        """Pumps until condition() holds; a clear error on timeout, ChildFailed if the process ends first."""
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"timeout ({timeout:g} s) waiting for {what} from {self.name}: {self.tail()}")
            # A VMM that handed its guest to a process of its own (a transfer-mode update) has
            # exited while the pipes stay open: the new process writes to them.
            ended = self.process.poll() is not None and not self.handed_over
            if not self.pump(min(remaining, 0.05)) or ended:
                while self.pump(0):
                    pass
                if condition():
                    return
                raise ChildFailed(self)

    def pump_for(self, seconds):
        deadline = time.monotonic() + seconds
        self.pump_until(lambda: time.monotonic() >= deadline, seconds + 5, "time to pass")

    def wait_for(self, pattern, timeout=300, what=None, stream="out"):
        """(time, match) of `pattern` in stdout after the previous match, or anywhere in stderr."""
        found = []

        def matched():
            if stream == "out":
                match = pattern.search(self.out, self.scanned)
            else:
                match = pattern.search(self.err)
            if match:
                found.append((time.monotonic(), match))
            return bool(match)

        self.pump_until(matched, timeout, what or repr(pattern.pattern))
        when, match = found[0]
        if stream == "out":
            self.scanned = match.end()
        return when, match

    def send(self, text):
        self.process.stdin.write(text.encode())
        self.process.stdin.flush()

    def type_line(self, line):
        """Types `line` and Enter on the guest's console."""
        self.send(line + "\r")

    def stop(self, timeout=10):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            try:
                stream.close()
            except OSError:
                pass
        if self.process in PROCESSES:
            PROCESSES.remove(self.process)


def pump(children, timeout):
    """Reads whatever any child prints within `timeout`; False once every pipe is closed."""
    owners = {}
    for child in children:
        for stream in child.streams():
            owners[stream] = child
    if not owners:
        time.sleep(max(timeout, 0))
        return False
    ready, _, _ = select.select(list(owners), [], [], max(timeout, 0))
    now = time.monotonic()
    for stream in ready:
        owners[stream].take(stream, now)
    return True


def pump_until(children, condition, timeout, what, watch=None):
    """Pumps every child until condition() holds; fails on timeout or if `watch` (default: all) exits first."""
    watch = children if watch is None else watch
    deadline = time.monotonic() + timeout
    while not condition():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"timeout ({timeout:g} s) waiting for {what}: " + "; ".join(f"{c.name}: {c.tail()}" for c in watch))
        pump(children, min(remaining, 0.05))
        for child in watch:
            if child.process.poll() is not None:
                while pump([child], 0):
                    pass
                if condition():
                    return
                raise RuntimeError(f"{child.name} exited with {child.process.returncode} while waiting for {what}: {child.tail()}")


def kill_all():
    """Kills every child still running (at the end of a bench, or when it fails)."""
    for process in list(PROCESSES):
        if process.poll() is None:
            process.kill()
            process.wait()


class QMP:
    """Just enough QMP: commands and their answers; events are skipped."""

    def __init__(self, path, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.socket.connect(path)
                break
            except OSError:
                self.socket.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.001)
        self.file = self.socket.makefile("rwb")
        json.loads(self.file.readline())  # greeting
        self.command("qmp_capabilities")

    def command(self, name, **arguments):
        message = {"execute": name}
        if arguments:
            message["arguments"] = arguments
        self.file.write(json.dumps(message).encode() + b"\n")
        self.file.flush()
        while True:
            line = self.file.readline()
            if not line:
                raise RuntimeError(f"QMP closed during {name}")
            answer = json.loads(line)
            if "return" in answer:
                return answer["return"]
            if "error" in answer:
                raise RuntimeError(f"QMP {name}: {answer['error']}")

    def close(self):
        try:
            self.file.close()
            self.socket.close()
        except OSError:
            pass


def run_json(command, timeout=120):
    """The JSON a command prints; its stderr in the error if it fails."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, preexec_fn=die_with_parent)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


def summary(values, digits=2):
    """{median, min, max, all} of the values that are not None, or None."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    return {"median": round(statistics.median(present), digits), "min": round(min(present), digits),
            "max": round(max(present), digits), "all": [None if v is None else round(v, digits) for v in values]}


def median_gap_ms(ticks):
    """The median time between consecutive (time, n) ticks, in ms."""
    gaps = [(b[0] - a[0]) * 1000 for a, b in zip(ticks, ticks[1:])]
    return statistics.median(gaps) if gaps else None


class UnixHTTP(http.client.HTTPConnection):
    """HTTP/1.1 over a Unix socket (Engram's control API); connect() before a clock starts."""
    def __init__(self, path, timeout=120):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def standby_restore(api, body):
    """Sends PUT /vm/restore `body` to the standby VMM at `api` on a connection opened first;
    returns (the connection, the time the request was sent). Read the answer with `restore_answer`."""
    connection = UnixHTTP(api)
    connection.connect()
    payload = json.dumps(body)
    sent = time.monotonic()
    connection.request("PUT", "/vm/restore", body=payload, headers={"Content-Type": "application/json"})
    return connection, sent


def restore_answer(connection):
    """The answer to a `standby_restore` request: (time it arrived, its JSON); raises on a refusal."""
    response = connection.getresponse()
    answer = json.loads(response.read())
    arrived = time.monotonic()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"PUT /vm/restore: {response.status} {answer}")
    return arrived, answer


# MARK: Lazy restores of a filled guest (page_server.py, object_store.py, huge_pages.py)

TEST_KERNEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "guest/build/engram-test-kernel.elf")
FILL_DONE = re.compile(rb"FILL [^\n]*digest=([0-9a-f]+)\r")
DIGEST_DONE = re.compile(rb"DIGEST[^\n]*digest=([0-9a-f]+)\r")


def snapshot_filled_guest(engram, tmp, memory, fill_mib, seed=7):
    """A 1-vCPU test-kernel guest of `memory` that ran `fill FILL_MIB SEED` from its command line,
    snapshotted paused to TMP/vm.snap; returns the path and the fill's digest."""
    api = os.path.join(tmp, "source.sock")
    path = os.path.join(tmp, "vm.snap")
    guest = Child([engram, "run", "--kernel", TEST_KERNEL, "--memory", memory, "--cpus", "1",
                   "--cmdline", f"cpus=1 -- fill {fill_mib} {seed}", "--api-socket", api])
    _, match = guest.wait_for(FILL_DONE, timeout=600)
    digest = match.group(1).decode().strip()
    subprocess.run([engram, "snapshot", api, path, "--stay-paused"], check=True, capture_output=True, timeout=600)
    guest.stop()
    return path, digest


def restore_and_digest(engram, tmp, label, origin, digest, options, fill_mib):
    """Runs `engram restore ORIGIN OPTIONS` with a control socket, then `ticks` (the guest answers)
    and `digest` (checked against `digest`), and waits for a lazy fill to complete. Returns the
    sample: answer_ms and workload_ms from process start, restore_ms, total_ms (every page present),
    the fill's fault counts and latencies and what crossed the network, and throughput_mib_s."""
    api = os.path.join(tmp, f"restore-{label}.sock")
    child = Child([engram, "restore", origin, "--api-socket", api, *options])
    child.send("ticks\r")
    answered, _ = child.wait_for(re.compile(rb"TICKS \d+\r"))
    child.send("digest\r")
    done, match = child.wait_for(DIGEST_DONE)
    if match.group(1).decode().strip() != digest:
        raise RuntimeError(f"{label}: digest {match.group(1)!r}, expected {digest}")
    stats = {}
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        stats = run_json([engram, "ctl", api, "get", "/vm/memory/stats"])
        lazy = stats.get("lazy")
        if lazy is None or lazy.get("complete") or lazy.get("failure"):
            break
        time.sleep(0.05)
    child.stop()
    restore_ms = stats["restore"]["restore_milliseconds"]
    sample = {"answer_ms": (answered - child.started) * 1000, "workload_ms": (done - child.started) * 1000,
              "restore_ms": restore_ms, "total_ms": restore_ms}
    lazy = stats.get("lazy")
    if lazy:
        if not lazy.get("complete"):
            raise RuntimeError(f"{label}: the fill did not complete: {lazy.get('failure')}")
        transfer = lazy.get("transfer") or {}
        latency = lazy["fault_latency"]
        sample.update(total_ms=restore_ms + (lazy.get("fill_milliseconds") or 0), demand_faults=lazy["demand_faults"],
                      demand_zero_faults=lazy["demand_zero_faults"], demand_pages=lazy["demand_pages"],
                      fill_wait_faults=lazy.get("fill_wait_faults", 0), prefetch_pages=lazy.get("prefetch_pages", 0),
                      fault_p50_us=latency["p50_us"], fault_p90_us=latency["p90_us"], fault_p99_us=latency["p99_us"],
                      fault_max_us=latency["max_us"], bytes_received=transfer.get("bytes_received", 0),
                      requests=transfer.get("requests", 0), pages_received=transfer.get("pages_received", 0),
                      retries=transfer.get("reconnects", 0))
    received = sample.get("bytes_received") or fill_mib * (1 << 20)
    sample["throughput_mib_s"] = received / (1 << 20) / (sample["total_ms"] / 1000)
    return sample


def median_of(samples, key):
    """The median of `key` over the samples that have it, to 2 places; None if none has."""
    values = [s[key] for s in samples if s.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


# ---- a network namespace of the bench's own, and UDP to a guest in it ------------------------------

CLONE_NEWNET = 0x40000000
MIB = 1 << 20


def ip(*arguments):
    done = subprocess.run(["ip", *arguments], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(arguments)}: {done.stderr.strip()}")


class Namespace:
    """A network namespace of the bench's own: a bridge with the host's address, taps on it; the
    bench process enters it (setns), so its children and sockets are there; `close` goes back and
    deletes it (the taps go with it)."""

    def __init__(self, taps):
        tag = "".join(random.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(6))
        self.name = f"engram-bench-net-{tag}"
        self.bridge = f"nb{tag}"
        self.taps = {key: f"n{key}{tag}"[:15] for key in taps}
        self.subnet = "10.77.0"
        self.host = f"{self.subnet}.1"
        self.original = None
        ip("netns", "add", self.name)
        try:
            ip("-n", self.name, "link", "set", "lo", "up")
            ip("-n", self.name, "link", "add", self.bridge, "type", "bridge")
            ip("-n", self.name, "addr", "add", f"{self.host}/24", "dev", self.bridge)
            ip("-n", self.name, "link", "set", self.bridge, "up")
            for tap in self.taps.values():
                ip("-n", self.name, "tuntap", "add", tap, "mode", "tap", "vnet_hdr")
                ip("-n", self.name, "link", "set", tap, "master", self.bridge)
                ip("-n", self.name, "link", "set", tap, "up")
            self.original = os.open("/proc/self/ns/net", os.O_RDONLY)
            target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
            try:
                if LIBC.setns(target, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(target)
        except BaseException:
            self.close()
            raise

    def neighbour(self, address, mac):
        ip("-n", self.name, "neigh", "replace", address, "lladdr", mac, "dev", self.bridge, "nud", "permanent")

    def close(self):
        if self.original is not None:
            LIBC.setns(self.original, CLONE_NEWNET)
            os.close(self.original)
            self.original = None
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)


def udp_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, 33, 8 * MIB)  # SO_RCVBUFFORCE (root)
    s.setsockopt(socket.SOL_SOCKET, 32, 8 * MIB)  # SO_SNDBUFFORCE
    return s


class EchoStream:
    """One datagram (sequence number, send time) to a guest's UDP echo port every `period` s, from a
    process of its own (a thread would wait for the bench's GIL), and the host's monotonic arrival
    time of each echo: the guest as a network client sees it, whatever its timers do.
    `outage(start, end)` is the largest gap between echoes arriving in that window, less the period,
    and how many datagrams sent in it never came back."""

    def __init__(self, address, port, period=0.001):
        import multiprocessing
        self.address, self.port, self.period = address, port, period
        self.arrivals, self.sent = [], []  # (arrival time, sequence number), (send time, sequence number)
        self.pipe, theirs = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("fork").Process(
            target=echo_stream, args=(address, port, period, theirs), daemon=True)
        self.process.start()

    def fetch(self):
        self.pipe.send("dump")
        if not self.pipe.poll(10):
            raise RuntimeError(f"the UDP echo stream to {self.address}:{self.port} does not answer")
        self.arrivals, self.sent = self.pipe.recv()

    def wait_for_echoes(self, count, timeout):
        deadline = time.monotonic() + timeout
        while True:
            self.fetch()
            if len(self.arrivals) >= count:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(self.arrivals)} UDP echoes from {self.address}:{self.port} in {timeout} s")
            time.sleep(0.05)

    def outage(self, start, end):
        """(largest gap between echo arrivals in [start, end] less the period, in ms; datagrams sent in
        [start, end - 0.05] that never came back)."""
        self.fetch()
        times = [t for t, _ in self.arrivals if start <= t <= end]
        if len(times) < 2:
            raise RuntimeError(f"{len(times)} UDP echoes between {start:.3f} and {end:.3f}")
        gap = max(b - a for a, b in zip(times, times[1:]))
        echoed = {n for _, n in self.arrivals}
        lost = sum(1 for t, n in self.sent if start <= t <= end - 0.05 and n not in echoed)
        return gap * 1000 - self.period * 1000, lost

    def stop(self):
        if self.process.is_alive():
            try:
                self.pipe.send("stop")
            except OSError:
                pass
            self.process.join(2)
            if self.process.is_alive():
                self.process.kill()


def echo_stream(address, port, period, pipe):
    """EchoStream's process: sends, records echoes, and hands its records over when asked."""
    import struct
    die_with_parent()
    s = udp_socket()
    s.setblocking(False)
    arrivals, sent = [], []
    sequence, next_send = 0, time.monotonic()
    while True:
        now = time.monotonic()
        if now >= next_send:
            try:
                s.sendto(struct.pack("<Qd", sequence, now) + bytes(48), (address, port))
                sent.append((now, sequence))
            except OSError:
                pass
            sequence += 1
            next_send = max(next_send + period, now)
        ready, _, _ = select.select([s, pipe], [], [], max(0.0, next_send - time.monotonic()))
        if s in ready:
            while True:
                try:
                    back = s.recv(2048)
                except OSError:
                    break
                arrivals.append((time.monotonic(), struct.unpack("<Q", back[:8])[0]))
        if pipe in ready:
            request = pipe.recv()
            if request == "stop":
                return
            pipe.send((arrivals, sent))
