#!/usr/bin/env python3
"""Frame latency and idle cost of `engram display --vnc`, beside QEMU 7.2's built-in VNC server.

Frame latency: the time from a write to the screen until a VNC viewer holding an incremental
update request receives the rectangle. The viewer is a small RFB client written here, which only
times and skips updates. It asks for ZRLE, or Raw with --encoding raw. Two kinds of write:
- `guest echo`: a key sent on the test kernel's serial console, which the guest echoes and draws
  (one 8x16 cell, in a ring-3 job). This counts the guest's own handling as well.
- `file write`: the bench writes a 16x16 block straight into the display file, which the guest
  does when it draws. This is the display process's share alone.
Each is timed --samples times, with random gaps of 30 to 130 ms so writes do not line up with the
poll.

Idle CPU: the CPU time (utime + stime from /proc) the display process uses over --idle-seconds
while the guest sits at its prompt, with one viewer connected and always holding an incremental
request, and with no viewer.

The QEMU peer is `qemu-system-x86_64 -M pc -vga std -vnc` running the same test kernel, idle. Its
display cost is QEMU's CPU with one viewer connected minus its CPU with none, over the same time.
QEMU's VNC lives inside the VMM process, so this difference is the fairest like-for-like. Frame
latency is not measured for QEMU: the test kernel cannot draw on QEMU's VGA, and nothing outside
the guest can write QEMU's video memory.

Writes docs/results/display.md and .json.
"""
import argparse, json, mmap, os, platform, random, re, socket, statistics, struct, subprocess, sys, tempfile, time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import PROCESSES, Child  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL = os.path.join(ROOT, "guest/build/engram-test-kernel.elf")
TICKS = os.sysconf("SC_CLK_TCK")


class Viewer:
    """A minimal RFB 3.8 viewer: no security, one encoding, always one incremental request pending."""

    def __init__(self, port, encoding):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.received = 0
        version = self.read(12)
        assert version.startswith(b"RFB "), version
        self.sock.sendall(b"RFB 003.008\n")
        types = self.read(self.read(1)[0])
        assert 1 in types, f"server wants security types {list(types)}"
        self.sock.sendall(b"\x01")
        assert self.read(4) == b"\0\0\0\0"
        self.sock.sendall(b"\x01")  # shared
        self.width, self.height = struct.unpack(">HH", self.read(4))
        self.read(16)
        self.read(struct.unpack(">I", self.read(4))[0])
        code = {"raw": 0, "zrle": 16}[encoding]
        self.sock.sendall(struct.pack(">BxHi", 2, 1, code))
        self.request(incremental=False)
        before = self.received
        self.next_update()
        self.first_frame_bytes = self.received - before - len(self.buffer)

    def read(self, count):
        while len(self.buffer) < count:
            data = self.sock.recv(1 << 20)
            if not data:
                raise RuntimeError("the VNC server closed the connection")
            self.buffer += data
            self.received += len(data)
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def request(self, incremental=True):
        self.sock.sendall(struct.pack(">BBHHHH", 3, 1 if incremental else 0, 0, 0, self.width, self.height))

    def next_update(self, timeout=10):
        """Waits for one FramebufferUpdate, skips its rectangles, asks for the next; returns its arrival time and rectangles."""
        self.sock.settimeout(timeout)
        kind = self.read(1)[0]
        arrived = time.perf_counter()
        assert kind == 0, f"unexpected server message {kind}"
        count = struct.unpack(">xH", self.read(3))[0]
        rectangles = []
        for _ in range(count):
            x, y, w, h, encoding = struct.unpack(">HHHHi", self.read(12))
            if encoding == 0:
                self.read(w * h * 4)
            elif encoding == 16:
                self.read(struct.unpack(">I", self.read(4))[0])
            else:
                raise RuntimeError(f"unexpected encoding {encoding}")
            rectangles.append((x, y, w, h))
        self.request()
        return arrived, rectangles

    def close(self):
        self.sock.close()


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def cpu_over(pid, seconds):
    start = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - start) / seconds


def start_display(engram, display_file):
    child = Child([engram, "display", display_file, "--vnc", "127.0.0.1:0"])
    _, match = child.wait_for(re.compile(rb"VNC on 127\.0\.0\.1:(\d+)"), timeout=30, stream="err")
    return child, int(match.group(1))


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure_engram(args, tmp):
    display_file = os.path.join(tmp, "vm.fb")
    guest = Child([args.engram, "run", "--kernel", KERNEL, "--memory", "256M", "--cpus", "1", "--cmdline", "cpus=1 -- ticks",
                   "--display", display_file, "--api-socket", os.path.join(tmp, "vm.sock")])
    guest.wait_for(re.compile(rb"TICKS \d+\r\n> "))
    display, port = start_display(args.engram, display_file)
    frame_bytes = {encoding: Viewer(port, encoding).first_frame_bytes for encoding in ("raw", "zrle")}
    viewer = Viewer(port, args.encoding)
    time.sleep(0.5)

    echo = []
    for index in range(args.samples):
        time.sleep(random.uniform(0.03, 0.13))
        sent = time.perf_counter()
        guest.send("x" if index % 2 == 0 else "\x7f")
        arrived, _ = viewer.next_update()
        echo.append((arrived - sent) * 1000)

    with open(display_file, "r+b") as f:
        mapped = mmap.mmap(f.fileno(), 0)
        stride = struct.unpack_from("<I", mapped, 24)[0]
        writes = []
        for index in range(args.samples):
            time.sleep(random.uniform(0.03, 0.13))
            colour = struct.pack("<I", 0x00FF00 if index % 2 == 0 else 0x0000FF) * 16
            sent = time.perf_counter()
            for row in range(16):
                offset = 4096 + (300 + row) * stride + 600 * 4
                mapped[offset:offset + 64] = colour
            arrived, rectangles = viewer.next_update()
            assert any(x <= 600 < x + w and y <= 300 < y + h for x, y, w, h in rectangles), rectangles
            writes.append((arrived - sent) * 1000)
        mapped.close()

    # Idle: the guest at its prompt, the viewer holding a request; then no viewer at all.
    time.sleep(0.5)
    idle_viewer = cpu_over(display.process.pid, args.idle_seconds)
    viewer.close()
    time.sleep(0.5)
    idle_alone = cpu_over(display.process.pid, args.idle_seconds)
    for child in (display, guest):
        child.process.kill()
        child.process.wait()
    return {"frame_bytes": frame_bytes, "echo_ms": echo, "file_write_ms": writes, "idle_cpu_with_viewer": idle_viewer, "idle_cpu_without_viewer": idle_alone}


def measure_qemu(args, tmp):
    port = 5900 + 77
    command = [args.qemu, "-M", "pc", "-accel", "kvm", "-m", "256M", "-smp", "1", "-nodefaults", "-no-user-config",
               "-vga", "std", "-vnc", f"127.0.0.1:{port - 5900}", "-serial", "stdio",
               "-kernel", KERNEL, "-append", "cpus=1 -- ticks"]
    qemu = Child(command)
    qemu.wait_for(re.compile(rb"TICKS \d+\r?\r\n> "), timeout=120)
    time.sleep(1)
    without = cpu_over(qemu.process.pid, args.idle_seconds)
    viewer = Viewer(port, args.encoding)

    # Keep a request pending the whole time, as a real viewer does, answering what comes.
    def drain_for(seconds):
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            try:
                viewer.next_update(timeout=max(0.01, deadline - time.perf_counter()))
            except (socket.timeout, TimeoutError):
                break

    drain_for(1.0)
    start = cpu_seconds(qemu.process.pid)
    began = time.perf_counter()
    drain_for(args.idle_seconds)
    with_viewer = (cpu_seconds(qemu.process.pid) - start) / (time.perf_counter() - began)
    viewer.close()
    qemu.process.kill()
    qemu.process.wait()
    return {"idle_cpu_without_viewer": without, "idle_cpu_with_viewer": with_viewer, "display_share": with_viewer - without}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engram", default=os.path.join(ROOT, ".build/release/engram"))
    parser.add_argument("--qemu", default="qemu-system-x86_64")
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--idle-seconds", type=float, default=10)
    parser.add_argument("--encoding", choices=["raw", "zrle"], default="zrle")
    args = parser.parse_args()
    random.seed(7)
    try:
        with tempfile.TemporaryDirectory(prefix="engram-bench-display-") as tmp:
            engram = measure_engram(args, tmp)
            qemu = measure_qemu(args, tmp)
    finally:
        for process in PROCESSES:
            if process.poll() is None:
                process.kill()

    def summary(values):
        return {"median": statistics.median(values), "p90": percentile(values, 0.9), "min": min(values), "max": max(values)}

    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "host": platform.node(), "samples": args.samples,
        "encoding": args.encoding, "idle_seconds": args.idle_seconds,
        "engram": {"echo_ms": summary(engram["echo_ms"]), "file_write_ms": summary(engram["file_write_ms"]),
                   "full_frame_bytes": engram["frame_bytes"], "idle_cpu_with_viewer": engram["idle_cpu_with_viewer"], "idle_cpu_without_viewer": engram["idle_cpu_without_viewer"]},
        "qemu": qemu,
    }
    os.makedirs(os.path.join(ROOT, "docs/results"), exist_ok=True)
    with open(os.path.join(ROOT, "docs/results/display.json"), "w") as f:
        json.dump(result, f, indent=2)
    e, q = result["engram"], result["qemu"]
    with open(os.path.join(ROOT, "docs/results/display.md"), "w") as f:
        f.write(f"""# Display: frame latency and idle cost

{result['date']}, {result['host']}; release build; bench/display.py; 1024x768 XRGB8888; {args.encoding.upper()} viewer (the
bench's own RFB client); {args.samples} samples per kind of write, random gaps of 30-130 ms; idle CPU over {args.idle_seconds:g} s.

## Frame latency (write to the viewer receiving the rectangle)

| write | median (ms) | p90 (ms) | min (ms) | max (ms) |
|---|---:|---:|---:|---:|
| guest echo of a key typed on serial (guest handling included) | {e['echo_ms']['median']:.1f} | {e['echo_ms']['p90']:.1f} | {e['echo_ms']['min']:.1f} | {e['echo_ms']['max']:.1f} |
| 16x16 block written into the display file | {e['file_write_ms']['median']:.1f} | {e['file_write_ms']['p90']:.1f} | {e['file_write_ms']['min']:.1f} | {e['file_write_ms']['max']:.1f} |

The display process compares the file with its copy every 20 ms while a viewer waits and the screen
has changed in the last second, so the expected latency is about 10 ms (half a poll), at most 20 ms
plus encoding and sending. After a second without change it compares every 200 ms (that is what
keeps idle CPU near zero), so the first change after a quiet spell can take up to 200 ms, unless
a viewer's key press brings the fast polling back first.

A whole console screen (the first, non-incremental update): {e['full_frame_bytes']['raw']:,} bytes in Raw,
{e['full_frame_bytes']['zrle']:,} bytes in ZRLE ({e['full_frame_bytes']['raw'] / e['full_frame_bytes']['zrle']:.0f}x smaller).

## CPU while the screen is idle (share of one core)

| process | one viewer holding a request | no viewer |
|---|---:|---:|
| `engram display` (a process of its own) | {100 * e['idle_cpu_with_viewer']:.2f} % | {100 * e['idle_cpu_without_viewer']:.2f} % |
| QEMU 7.2 `-vga std -vnc` (whole VMM, same idle guest) | {100 * q['idle_cpu_with_viewer']:.2f} % | {100 * q['idle_cpu_without_viewer']:.2f} % |
| QEMU's VNC share (difference) | {100 * q['display_share']:.2f} % | – |

QEMU's frame latency is not measured: the test kernel cannot draw on QEMU's VGA, and nothing
outside the guest can write QEMU's video memory. QEMU refreshes a VNC display every 30 ms while
it changes and backs off to up to 3 s when it does not (its `VNC_REFRESH_INTERVAL_*`).
""")
    print(open(os.path.join(ROOT, "docs/results/display.md")).read())


if __name__ == "__main__":
    main()
