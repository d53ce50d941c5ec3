#!/usr/bin/env python3
"""The test kernel's virtio-net driver and IPv4 peer against QEMU's virtio-net-device on a tap (microvm, KVM).

Creates its own network namespace with a tap (10.X.Y.1/24; unique names, removed in `finally`; the
host's own interfaces are never touched), runs QEMU inside it and the guest with
`ip=10.X.Y.2/24 udp_echo=7777`, then checks from the namespace: ICMP echo to the guest (raw socket,
and `ping -c 3` when installed), UDP echo round trips (1 to 1472 bytes), that the host handed the guest
partial checksums (NEEDS_CSUM, seen on the tap with PACKET_AUXDATA) and the guest completed them;
from the guest: `net ping` and `net udp` against a Python UDP echo, `net flood` (datagrams per second
printed), `net stats` counting all of it; again with MRG_RXBUF off, with CSUM/GUEST_CSUM off, and
without EVENT_IDX/INDIRECT_DESC; QMP announce-self (GUEST_ANNOUNCE: a gratuitous ARP on the tap and the
control-queue ack), `net announce`, `net ip` at run time, a host flood while the console answers, and
the misbehaving-driver kinds (the device works afterwards). Exits 0 only if everything passed.
Run (root): python3 guest/tests/qemu_net.py [--tcg]
"""
import argparse
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../Tests/Tools"))
import net_probe  # noqa: E402  (the host-side peer the end-to-end tests use)

import pexpect

from console_guest import ConsoleGuest

HERE = os.path.dirname(os.path.abspath(__file__))
ELF = os.path.join(HERE, "..", "build", "engram-test-kernel.elf")
MASK = (1 << 64) - 1
ECHO_PORT, HOST_ECHO_PORT, FLOOD_PORT = 7777, 9999, 9998
MAC = "52:54:00:4e:47:01"
EVIL = ["addr-outside-ram", "chain-loop", "chain-too-long", "len-overflow", "avail-idx-jump", "rewrite-in-flight",
        "indirect-in-indirect", "net-short-header", "net-bad-offsets", "net-oversize", "net-outside-ram"]
F = {"csum": 0, "guest_csum": 1, "mac": 5, "mrg_rxbuf": 15, "status": 16, "ctrl_vq": 17, "guest_announce": 21,
     "indirect": 28, "event_idx": 29, "version_1": 32}
STATS = ("rx_pkts", "rx_bytes", "tx_pkts", "tx_bytes", "rx_dropped", "arp_rx", "arp_tx", "icmp_echo", "udp_echo",
         "bad_csum", "announces")


def mix(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        check.failed += 1
    return cond


check.failed = 0


csum = net_probe.checksum
host_ping = net_probe.ping_count


def udp_roundtrips(ip, sizes, per_size):
    """Datagrams to the guest's echo port; returns (sent, matching answers)."""
    return net_probe.udp_count(ip, ECHO_PORT, per_size, sizes)


class Sniffer(threading.Thread):
    """Counts, on the tap: UDP to the guest's echo port that left with a partial checksum
    (TP_STATUS_CSUMNOTREADY), and gratuitous ARPs from the guest."""

    def __init__(self, tap, guest_ip):
        super().__init__(daemon=True)
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        self.s.bind((tap, 0))
        self.s.setsockopt(263, 8, 1)   # SOL_PACKET, PACKET_AUXDATA
        self.s.settimeout(0.2)
        self.ip = socket.inet_aton(guest_ip)
        self.partial = self.full = self.garp = 0
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                pkt, anc, _, addr = self.s.recvmsg(4096, socket.CMSG_SPACE(20))
            except socket.timeout:
                continue
            except OSError:
                return
            status = 0
            for level, kind, data in anc:
                if level == 263 and kind == 8:
                    status = struct.unpack_from("I", data)[0]
            etype = pkt[12:14]
            if addr[2] == 4 and etype == b"\x08\x00" and pkt[23] == 17 and pkt[30:34] == self.ip and \
                    struct.unpack("!H", pkt[36:38])[0] == ECHO_PORT:
                if status & 8:
                    self.partial += 1
                else:
                    self.full += 1
            if addr[2] != 4 and etype == b"\x08\x06" and pkt[28:32] == self.ip and pkt[38:42] == self.ip:
                self.garp += 1


class UdpEcho(threading.Thread):
    def __init__(self, ip, port, echo=True):
        super().__init__(daemon=True)
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.s.bind((ip, port))
        self.s.settimeout(0.2)
        self.echo, self.count, self.stop = echo, 0, False

    def run(self):
        while not self.stop:
            try:
                data, addr = self.s.recvfrom(4096)
            except socket.timeout:
                continue
            self.count += 1
            if self.echo:
                self.s.sendto(data, addr)


class Qmp:
    def __init__(self, path):
        for _ in range(100):
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                time.sleep(0.05)
        self.f = self.s.makefile("rw")
        self.f.readline()
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "return" in r or "error" in r:
                return r


class Guest(ConsoleGuest):
    def __init__(self, accel, tap, append, qmp):
        args = ["-M", "microvm,acpi=off", "-accel", accel, "-m", "512M", "-smp", "2", "-nodefaults", "-no-user-config",
                "-nographic", "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                "-global", "virtio-mmio.force-legacy=false", "-kernel", ELF, "-append", append,
                "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % tap,
                "-device", "virtio-net-device,netdev=n0,mac=%s" % MAC, "-qmp", "unix:%s,server=on,wait=off" % qmp]
        self.child = pexpect.spawn("qemu-system-x86_64", args, timeout=60, encoding="utf-8")
        self.child.expect(r"READY cpus=2 mem_mib=512\r*\n")
        self.child.expect(r"NET devices=(\d+)\r*\n> ")
        self.boot_listing = self.child.before

    def stats(self):
        m = self.cmd("net stats 0", r"NET STATS dev=0 " + " ".join(r"%s=(\d+)" % k for k in STATS))
        return dict(zip(STATS, map(int, m.groups()))) if m else None

    def poweroff(self):
        self.child.send("poweroff\r")
        self.child.expect("POWEROFF")
        self.child.expect(pexpect.EOF)


def traffic(g, host_ip, guest_ip, tag, sniff=None):
    """The round trips both ways; returns the stats before and after."""
    before = g.stats()
    p0 = sniff.partial if sniff else 0
    check(host_ping(guest_ip, 3, 0x1234) == 3, "host pings the guest: 3/3 replies, payload intact (%s)" % tag)
    sent, ok = udp_roundtrips(guest_ip, (1, 18, 64, 512, 1000, 1472), 3)
    check(sent == ok, "UDP echo from the host: %d/%d datagrams of 1..1472 bytes came back intact (%s)" % (ok, sent, tag))
    m = g.cmd("net ping 0 %s 3" % host_ip, r"NET PING ip=%s sent=(\d+) received=(\d+)" % re.escape(host_ip))
    check(m is not None and m.groups() == ("3", "3"), "net ping: %s (%s)" % (m.group(0).split("\r")[0] if m else None, tag))
    for size, count in ((1472, 5), (100, 3), (0, 2)):
        m = g.cmd("net udp 0 %s %d %d %d 7" % (host_ip, HOST_ECHO_PORT, size, count),
                  r"NET UDP ip=%s port=%d sent=(\d+) received=(\d+) mismatched=(\d+)" % (re.escape(host_ip), HOST_ECHO_PORT))
        check(m is not None and m.groups() == (str(count), str(count), "0"),
              "net udp %d bytes x%d: %s (%s)" % (size, count, m.group(0).split("\r")[0] if m else None, tag))
    after = g.stats()
    if before and after:
        d = {k: after[k] - before[k] for k in STATS}
        check(d["icmp_echo"] == 3 and d["udp_echo"] == sent and d["bad_csum"] == 0 and d["rx_pkts"] >= 3 + sent + 3 + 10
              and d["tx_pkts"] >= 3 + sent + 3 + 10, "net stats counted it: %s (%s)" % (d, tag))
    if sniff:
        time.sleep(0.3)
        return sniff.partial - p0
    return 0


def inner(args):
    accel = "tcg" if args.tcg else "kvm"
    host_ip, guest_ip, tap = args.host_ip, args.guest_ip, args.tap
    tmp = tempfile.mkdtemp(prefix="engram-net-")
    echo = UdpEcho(host_ip, HOST_ECHO_PORT)
    sink = UdpEcho(host_ip, FLOOD_PORT, echo=False)
    echo.start()
    sink.start()
    g = None
    try:
        g = Guest(accel, tap, "cpus=2 ip=%s/24 udp_echo=%d -- net" % (guest_ip, ECHO_PORT), os.path.join(tmp, "qmp"))
        qmp = Qmp(os.path.join(tmp, "qmp"))
        line = [l.strip() for l in g.boot_listing.splitlines() if l.startswith("NET dev=")]
        m = re.fullmatch(r"NET dev=0 mac=(\S+) ip=(\S+) link=(up|down) features=0x([0-9a-f]{16}) status=(\w+)", line[0]) if line else None
        check(m is not None and m.group(1) == MAC and m.group(2) == guest_ip + "/24" and m.group(3) == "up"
              and m.group(5) == "ok", "net lists the device: %s" % line)
        feats = int(m.group(4), 16) if m else 0
        want = [k for k in ("csum", "guest_csum", "mac", "mrg_rxbuf", "status", "ctrl_vq", "guest_announce", "version_1")
                if not feats & (1 << F[k])]
        check(not want, "negotiated MAC, STATUS, MRG_RXBUF, CTRL_VQ, GUEST_ANNOUNCE, CSUM, GUEST_CSUM (missing: %s)" % want)
        sniff = Sniffer(tap, guest_ip)
        sniff.start()
        if shutil.which("ping"):
            p = subprocess.run(["ping", "-c", "3", "-W", "2", guest_ip], stdout=subprocess.DEVNULL)
            check(p.returncode == 0, "ping -c 3 %s" % guest_ip)

        partial = traffic(g, host_ip, guest_ip, "defaults", sniff)
        check(partial > 0, "the host sent the guest %d UDP datagrams with partial checksums (NEEDS_CSUM), all echoed" % partial)

        # flood: guest -> host, counted on the host
        n0 = sink.count
        t = time.monotonic()
        m = g.cmd("net flood 0 %s %d 64 20000" % (host_ip, FLOOD_PORT), r"NET FLOOD sent=(\d+)")
        dt = time.monotonic() - t
        time.sleep(0.3)
        got = sink.count - n0
        check(m is not None and m.group(1) == "20000" and got >= 19000,
              "net flood: sent=%s, the host received %d (%.0f datagrams/s)" % (m.group(1) if m else None, got, got / dt))

        # flood: host -> guest's echo port while the console must answer
        stop = threading.Event()

        def blast():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            while not stop.is_set():
                for _ in range(200):
                    s.sendto(b"x" * 64, (guest_ip, ECHO_PORT))
                time.sleep(0)
        th = threading.Thread(target=blast, daemon=True)
        th.start()
        time.sleep(0.5)
        worst = 0.0
        for _ in range(5):
            t = time.monotonic()
            ok = g.cmd("ticks", r"TICKS \d+", timeout=10) is not None
            worst = max(worst, time.monotonic() - t)
            if not ok:
                break
        stop.set()
        th.join()
        check(ok and worst < 1.0, "the console answers during a host flood (slowest command %.0f ms)" % (worst * 1000))
        time.sleep(0.5)
        check(host_ping(guest_ip, 2, 0x2345) == 2, "the guest still answers pings after the flood")

        # options: each re-initialises the device
        for opt, val, tag in (("mrg_rxbuf", 0, "MRG_RXBUF off"), ("csum", 0, "CSUM off"), ("guest_csum", 0, "CSUM and GUEST_CSUM off"),
                              ("event_idx", 0, "... and EVENT_IDX off"), ("indirect", 0, "... and INDIRECT_DESC off")):
            m = g.cmd("net opt 0 %s %d" % (opt, val),
                      r"NET OPT dev=0 mrg_rxbuf=(\d) csum=(\d) guest_csum=(\d) event_idx=(\d) indirect=(\d) status=ok")
            check(m is not None and m.group(1 + ["mrg_rxbuf", "csum", "guest_csum", "event_idx", "indirect"].index(opt)) == "0",
                  "net opt %s 0: %s" % (opt, m.group(0).split("\r")[0] if m else None))
            partial = traffic(g, host_ip, guest_ip, tag, sniff)
            if opt == "guest_csum":
                check(partial == 0, "without GUEST_CSUM the host sends full checksums (%d partial)" % partial)
        for opt in ("mrg_rxbuf", "csum", "guest_csum", "event_idx", "indirect"):
            g.cmd("net opt 0 %s 1" % opt, r"NET OPT .*")

        # announcements: QEMU's announce-self (config change, ANNOUNCE, ack on the control queue), then ours
        a0, garp0 = g.stats()["announces"], sniff.garp
        for _ in range(2):
            r = qmp.cmd("announce-self", initial=50, max=550, rounds=1, step=100)
            check("return" in r, "QMP announce-self: %s" % r)
            time.sleep(0.5)
        a1 = g.stats()["announces"]
        check(a1 - a0 == 2 and sniff.garp - garp0 >= 2,
              "GUEST_ANNOUNCE: two announce-self, %d gratuitous ARPs counted, %d seen on the tap" % (a1 - a0, sniff.garp - garp0))
        check(g.cmd("net announce 0", r"NET ANNOUNCE dev=0") is not None and g.stats()["announces"] == a1 + 1,
              "net announce sends one more")

        # an address set at run time
        new_ip = guest_ip.rsplit(".", 1)[0] + ".3"
        check(g.cmd("net ip 0 %s/24" % new_ip, r"NET IP dev=0 ip=%s/24" % re.escape(new_ip)) is not None and
              host_ping(new_ip, 2, 0x3456) == 2, "net ip: the guest answers at %s" % new_ip)
        g.cmd("net ip 0 %s/24" % guest_ip, r"NET IP .*")
        check(g.cmd("net echo 7778", r"NET ECHO port=7778") is not None, "net echo 7778")
        g.cmd("net echo %d" % ECHO_PORT, r"NET ECHO .*")

        # errors
        check(g.cmd("net ping 4 %s 1" % host_ip, r"ERROR net: no device 4") is not None, "ERROR for a missing device")
        check(g.cmd("net udp 0 %s 9 1473 1 1" % host_ip, r"ERROR usage: net udp .*") is not None, "ERROR for 1473 bytes")
        check(g.cmd("virtio evil 0 nonsense", r"ERROR virtio evil: unknown kind nonsense") is not None, "ERROR for an unknown evil kind")

        # misbehaving driver: the device works afterwards (reset and re-initialised)
        for kind in EVIL:
            m = g.cmd("virtio evil 0 %s" % kind, r"EVIL %s dev=0 result=(\d+|timeout|needs_reset)" % kind)
            check(m is not None and host_ping(guest_ip, 1, 0x4567) == 1,
                  "evil %s: result=%s, the guest answers pings afterwards" % (kind, m.group(1) if m else None))
        m = g.cmd("net ping 0 %s 2" % host_ip, r"NET PING ip=\S+ sent=2 received=(\d)")
        check(m is not None and m.group(1) == "2", "net ping works after the misbehaving requests")
        m = g.cmd("net", r"NET dev=0 .* status=(\w+)\r*\nNET devices=1")
        check(m is not None and m.group(1) == "ok", "the device is ok at the end")
        g.poweroff()
        g = None
    finally:
        sniff_stop = [t for t in threading.enumerate() if isinstance(t, (Sniffer, UdpEcho))]
        for t in sniff_stop:
            t.stop = True
        if g is not None:
            g.child.terminate(force=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print("%s: %d failed" % ("PASS" if not check.failed else "FAIL", check.failed))
    return 1 if check.failed else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcg", action="store_true", help="use TCG instead of KVM")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tap", help=argparse.SUPPRESS)
    ap.add_argument("--host-ip", help=argparse.SUPPRESS)
    ap.add_argument("--guest-ip", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        return inner(args)
    subprocess.run(["make", "-s", "-C", os.path.join(HERE, "..")], check=True)
    pid = os.getpid()
    ns, tap = "engram-net-%d" % pid, "engt%d" % (pid % 100000)
    net = "10.%d.%d" % (100 + pid % 100, (pid // 100) % 250)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for c in (["ip", "link", "set", "lo", "up"], ["ip", "tuntap", "add", tap, "mode", "tap"],
                  ["ip", "addr", "add", net + ".1/24", "dev", tap], ["ip", "link", "set", tap, "up"]):
            subprocess.run(["ip", "netns", "exec", ns] + c, check=True)
        cmd = ["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__), "--inner", "--tap", tap,
               "--host-ip", net + ".1", "--guest-ip", net + ".2"] + (["--tcg"] if args.tcg else [])
        return subprocess.run(cmd).returncode
    finally:
        subprocess.run(["ip", "netns", "del", ns])


if __name__ == "__main__":
    sys.exit(main())
