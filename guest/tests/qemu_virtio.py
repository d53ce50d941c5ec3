#!/usr/bin/env python3
"""Cross-check of the test kernel's virtio drivers against QEMU's device models (microvm, KVM).

Boots the kernel under `qemu-system-x86_64 -M microvm,acpi=off` with two virtio-blk-device disks
(a sparse raw file, and a read-only one with serial=...) and a virtio-rng-device, and checks:
write/read/verify digests against a Python reference, that the host file holds exactly the pattern,
flush, write-zeroes and discard reading back as zeros, GET_ID, refusal of writes to the read-only
disk, rng distinctness, all with and without INDIRECT_DESC/EVENT_IDX, the misbehaving-driver
commands (the device recovers after each), short benches at queue depth 1 and 32 (timings printed),
and discovery from tokens given in Engram's syntax (one with a GSI the IOAPIC lacks). Exits 0 only if
everything passed.
Run: python3 guest/tests/qemu_virtio.py [--tcg]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pexpect

from console_guest import ConsoleGuest

HERE = os.path.dirname(os.path.abspath(__file__))
ELF = os.path.join(HERE, "..", "build", "engram-test-kernel.elf")
MASK = (1 << 64) - 1
FNV_BASIS, FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3
DISK_MIB, RO_MIB = 64, 8
SERIAL = "ENGRAM-RO-1"
EVIL = ["addr-outside-ram", "chain-loop", "chain-too-long", "len-overflow", "past-end", "avail-idx-jump",
        "rewrite-in-flight", "indirect-in-indirect"]


def mix(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def pattern_qwords(sector, count, seed):
    return [mix(seed ^ (s * 64 + i)) for s in range(sector, sector + count) for i in range(64)]


def fnv(qwords):
    h = FNV_BASIS
    for q in qwords:
        h = ((h ^ q) * FNV_PRIME) & MASK
    return "%016x" % h


def file_qwords(path, sector, count):
    with open(path, "rb") as f:
        f.seek(sector * 512)
        data = f.read(count * 512)
    return [int.from_bytes(data[i:i + 8], "little") for i in range(0, len(data), 8)]


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        check.failed += 1
    return cond


check.failed = 0


def qemu_args(accel, tmp, append, machine="microvm,acpi=off"):
    return ["-M", machine, "-accel", accel, "-m", "512M", "-smp", "2", "-nodefaults", "-no-user-config",
            "-nographic", "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-global", "virtio-mmio.force-legacy=false", "-kernel", ELF, "-append", append,
            "-drive", "id=d0,file=%s,format=raw,if=none,discard=unmap" % os.path.join(tmp, "disk0.raw"),
            "-device", "virtio-blk-device,drive=d0",
            "-drive", "id=d1,file=%s,format=raw,if=none,readonly=on" % os.path.join(tmp, "disk1.raw"),
            "-device", "virtio-blk-device,drive=d1,serial=%s" % SERIAL,
            "-object", "rng-random,filename=/dev/urandom,id=rng0", "-device", "virtio-rng-device,rng=rng0"]


class Guest(ConsoleGuest):
    def __init__(self, accel, tmp):
        self.child = pexpect.spawn("qemu-system-x86_64", qemu_args(accel, tmp, "cpus=2 -- virtio"), timeout=60,
                                   encoding="utf-8")
        self.child.expect(r"READY cpus=2 mem_mib=512\r*\n")
        self.child.expect(r"VIRTIO devices=(\d+)\r*\n> ")
        self.boot_listing = self.child.before

    def poweroff(self):
        self.child.send("poweroff\r")
        self.child.expect("POWEROFF")
        self.child.expect(pexpect.EOF)


def blk_checks(g, disk, ind, ev, base):
    tag = "indirect=%d event_idx=%d" % (ind, ev)
    for dev in (0, 2):
        m = g.cmd("virtio opt %d indirect %d" % (dev, ind), r"VIRTIO OPT dev=%d indirect=(\d) event_idx=(\d) poll=0 status=ok" % dev)
        m2 = g.cmd("virtio opt %d event_idx %d" % (dev, ev), r"VIRTIO OPT dev=%d indirect=(\d) event_idx=(\d) poll=0 status=ok" % dev)
        check(m is not None and m2 is not None and m2.group(1) == str(ind) and m2.group(2) == str(ev),
              "dev %d re-initialised with %s" % (dev, tag))
    info = g.cmd("blk 0 info", r"BLK dev=0 sectors=(\d+) ro=0 blk_size=512 seg_max=(\d+) flush=(\d) discard=(\d) write_zeroes=(\d) indirect=(\d) event_idx=(\d)")
    check(info is not None and int(info.group(1)) == DISK_MIB * 2048 and info.group(6) == str(ind) and info.group(7) == str(ev),
          "blk info (%s): %s" % (tag, info.group(0).split("\r")[0] if info else None))
    # write / read / verify, one range larger than a request and a batch boundary, and one small
    for sector, count, seed in ((base, 3000, 11 + ind + 2 * ev), (base + 20001, 9, 5)):
        want = fnv(pattern_qwords(sector, count, seed))
        m = g.cmd("blk 0 write %d %d %d" % (sector, count, seed), r"BLK WRITE dev=0 sector=%d count=%d digest=([0-9a-f]{16}) status=ok" % (sector, count))
        check(m is not None and m.group(1) == want, "write %d+%d digest = reference (%s)" % (sector, count, tag))
        m = g.cmd("blk 0 read %d %d" % (sector, count), r"BLK READ dev=0 sector=%d count=%d digest=([0-9a-f]{16}) status=ok" % (sector, count))
        check(m is not None and m.group(1) == want, "read digest = write digest")
        check(g.cmd("blk 0 verify %d %d %d" % (sector, count, seed), r"BLK VERIFY dev=0 sector=%d count=%d ok" % (sector, count)) is not None, "verify ok")
        check(g.cmd("blk 0 verify %d %d %d" % (sector, count, seed + 1), r"BLK VERIFY dev=0 sector=%d count=%d mismatch sector=%d" % (sector, count, sector)) is not None,
              "verify with another seed reports the first sector")
        check(g.cmd("blk 0 flush", r"BLK FLUSH dev=0 status=ok") is not None, "flush")
        check(file_qwords(disk, sector, count) == pattern_qwords(sector, count, seed), "host file holds the pattern at sector %d" % sector)
    # pieces equal a whole
    m1 = g.cmd("blk 0 write %d 5 77" % (base + 25000), r"BLK WRITE .* status=ok")
    m2 = g.cmd("blk 0 write %d 7 77" % (base + 25005), r"BLK WRITE .* status=ok")
    check(m1 is not None and m2 is not None and
          g.cmd("blk 0 verify %d 12 77" % (base + 25000), r"BLK VERIFY dev=0 sector=%d count=12 ok" % (base + 25000)) is not None,
          "a range written in pieces verifies as one")
    zeros = fnv([0] * (16 * 64))
    for sub, name in (("zeroes", "ZEROES"), ("discard", "DISCARD")):
        sector = base + (27000 if sub == "zeroes" else 27100)
        offered = info is not None and info.group(5 if sub == "zeroes" else 4) == "1"
        if not offered:
            print("skip %s: not offered" % sub)
            continue
        m = g.cmd("blk 0 %s %d 16" % (sub, sector), r"BLK %s dev=0 sector=%d count=16 status=ok" % (name, sector))
        r = g.cmd("blk 0 read %d 16" % sector, r"BLK READ dev=0 sector=%d count=16 digest=([0-9a-f]{16}) status=ok" % sector)
        check(m is not None and r is not None and r.group(1) == zeros and file_qwords(disk, sector, 16) == [0] * 1024,
              "%s reads back as zeros, guest and host file (%s)" % (sub, tag))
    m = g.cmd("blk 1 id", r"BLK ID dev=1 id=(\S*)")
    check(m is not None and m.group(1) == SERIAL, "GET_ID returns the serial")
    check(g.cmd("blk 1 write 0 8 1", r"BLK WRITE dev=1 sector=0 count=8 digest=[0-9a-f]{16} status=ioerr") is not None,
          "the read-only disk refuses writes (ioerr)")
    check(g.cmd("blk 1 read 0 8", r"BLK READ dev=1 sector=0 count=8 digest=%s status=ok" % fnv([0] * 512)) is not None,
          "the read-only disk reads")
    m = g.cmd("rng 2 4096", r"RNG dev=2 bytes=4096 digest=[0-9a-f]{16} distinct=(\d+)")
    check(m is not None and int(m.group(1)) > 200, "rng 4096 bytes, distinct=%s (%s)" % (m.group(1) if m else None, tag))
    m = g.cmd("rng 2 10000", r"RNG dev=2 bytes=10000 digest=[0-9a-f]{16} distinct=(\d+)")
    check(m is not None, "rng 10000 bytes in several requests")


def bench(g, tag):
    for mode, block, qd, n in (("randread", 4096, 1, 2000), ("randread", 4096, 32, 20000), ("seqread", 1 << 20, 1, 100),
                               ("seqread", 1 << 20, 32, 400), ("seqwrite", 1 << 20, 1, 100), ("seqwrite", 1 << 20, 32, 400)):
        t = time.monotonic()
        m = g.cmd("blk 0 bench %s %d %d %d 3" % (mode, block, qd, n),
                  r"BLK BENCH dev=0 mode=%s block=%d qd=%d requests=%d bytes=%d ticks=(\d+) status=ok" % (mode, block, qd, n, n * block))
        dt = time.monotonic() - t
        if check(m is not None, "bench %s %d qd=%d (%s)" % (mode, block, qd, tag)):
            rate = ("%.0f IOPS" % (n / dt)) if block == 4096 else ("%.0f MiB/s" % (n * block / dt / (1 << 20)))
            print("     %d requests in %.0f ms (guest ticks %s): %s" % (n, dt * 1000, m.group(1), rate))
            if qd == 1 and mode == "randread" and "interrupts" in tag:
                # Waiting for the next 10 ms tick instead of the interrupt would take >= n ticks.
                check(int(m.group(1)) < n // 4, "completions arrive by interrupt, not by tick (%s ticks for %d requests)" % (m.group(1), n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcg", action="store_true", help="use TCG instead of KVM")
    args = ap.parse_args()
    accel = "tcg" if args.tcg else "kvm"
    subprocess.run(["make", "-s", "-C", os.path.join(HERE, "..")], check=True)
    tmp = tempfile.mkdtemp(prefix="engram-virtio-")
    try:
        disk = os.path.join(tmp, "disk0.raw")
        with open(disk, "wb") as f:
            f.truncate(DISK_MIB << 20)
        with open(os.path.join(tmp, "disk1.raw"), "wb") as f:
            f.truncate(RO_MIB << 20)

        g = Guest(accel, tmp)
        lines = [l.strip() for l in g.boot_listing.splitlines() if l.startswith("VIRTIO dev=")]
        want = [r"VIRTIO dev=0 type=blk base=0xfeb0[0-9a-f]{4} irq=\d+ features=0x0000000[13][0-9a-f]{8} status=ok",
                r"VIRTIO dev=1 type=blk base=0xfeb0[0-9a-f]{4} irq=\d+ features=0x0000000[13][0-9a-f]{8} status=ok",
                r"VIRTIO dev=2 type=rng base=0xfeb0[0-9a-f]{4} irq=\d+ features=0x0000000[13][0-9a-f]{8} status=ok"]
        check(len(lines) == 3 and all(re.fullmatch(w, l) for w, l in zip(want, lines)), "virtio lists blk, blk, rng: %s" % lines)
        for l in lines:
            print("     " + l)
        base = 1000
        for ind, ev in ((1, 1), (0, 0), (1, 0), (0, 1)):
            blk_checks(g, disk, ind, ev, base)
            base += 30000
        bench(g, "indirect=1 event_idx=1, interrupts")
        g.cmd("virtio opt 0 indirect 1", r"VIRTIO OPT .*")
        g.cmd("virtio opt 0 event_idx 1", r"VIRTIO OPT .*")
        check(g.cmd("virtio opt 0 poll 1", r"VIRTIO OPT dev=0 indirect=1 event_idx=1 poll=1 status=ok") is not None, "poll mode on")
        bench(g, "polling")
        check(g.cmd("virtio opt 0 poll 0", r"VIRTIO OPT dev=0 indirect=1 event_idx=1 poll=0 status=ok") is not None, "poll mode off")
        for dev in (0, 2):
            for kind in EVIL:
                m = g.cmd("virtio evil %d %s" % (dev, kind), r"EVIL %s dev=%d result=(\d+|timeout|needs_reset)" % (kind, dev))
                check(m is not None, "evil %s on dev %d: result=%s" % (kind, dev, m.group(1) if m else None))
            if dev == 0:
                # (the seqwrite benches overwrote the disk with whatever their buffers held)
                check(g.cmd("blk 0 write 1000 3000 14", r"BLK WRITE dev=0 sector=1000 count=3000 digest=%s status=ok"
                            % fnv(pattern_qwords(1000, 3000, 14))) is not None and
                      g.cmd("blk 0 verify 1000 3000 14", r"BLK VERIFY dev=0 sector=1000 count=3000 ok") is not None,
                      "blk works after the misbehaving requests")
            else:
                check(g.cmd("rng 2 4096", r"RNG dev=2 bytes=4096 .*") is not None, "rng works after the misbehaving requests")
        m = g.cmd("virtio", r"((?:VIRTIO dev=[^\r\n]*\r*\n)+)VIRTIO devices=3")
        check(m is not None and m.group(1).count("status=ok") == 3, "all devices ok at the end")
        g.poweroff()

        # Discovery from tokens in Engram's syntax (K suffix, decimal base, an id) before " -- ", with
        # QEMU's own tokens turned off.
        # The rng's GSI is given as 40, a pin the IOAPIC does not have: it must still work, by tick.
        append = ("virtio_mmio.device=4K@0xfeb00e00:12 virtio_mmio.device=512@%d:11 virtio_mmio.device=0x200@0xfeb00a00:40:3 "
                  "-- virtio; blk 0 read 1000 3000; rng 2 8192; poweroff" % 0xfeb00c00)
        p = subprocess.run(["qemu-system-x86_64"] + qemu_args(accel, tmp, append, machine="microvm,acpi=off,auto-kernel-cmdline=off"), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60)
        out = [l.strip() for l in p.stdout.decode(errors="replace").splitlines()]
        types = [re.search(r"type=(\w+) .* status=(\w+)", l).groups() for l in out if l.startswith("VIRTIO dev=")]
        check(types == [("blk", "ok"), ("blk", "ok"), ("rng", "ok")], "Engram-style tokens: %s" % types)
        check("BLK READ dev=0 sector=1000 count=3000 digest=%s status=ok" % fnv(pattern_qwords(1000, 3000, 14)) in out,
              "the disk reads back after a reboot")
        check(any(re.fullmatch(r"RNG dev=2 bytes=8192 digest=[0-9a-f]{16} distinct=2\d\d", l) for l in out),
              "a device whose GSI is not routed still works (one step per tick)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%s: %d failed" % ("PASS" if not check.failed else "FAIL", check.failed))
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
