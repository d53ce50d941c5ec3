#!/usr/bin/env python3
"""Smoke test of the Engram test kernel under QEMU microvm (KVM by default, --tcg for TCG).

Checks the console contract of guest/README.md: READY with -smp 1 and 2, kernel command-line
commands, typed input (echo, backspace), heartbeat, dirty with a responsive console and an
unchanged digest, and poweroff. Prints boot-to-READY times. Run: python3 guest/tests/qemu_smoke.py
"""
import argparse
import os
import re
import subprocess
import sys
import time

import pexpect

HERE = os.path.dirname(os.path.abspath(__file__))
ELF = os.path.join(HERE, "..", "build", "engram-test-kernel.elf")
MASK = (1 << 64) - 1


def mix(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def expected_digest(mib, seed):
    h = 0xCBF29CE484222325
    for i in range(mib << 17):
        h = ((h ^ mix(seed ^ i)) * 0x100000001B3) & MASK
    return "%016x" % h


def qemu_args(accel, smp, append):
    return ["-M", "microvm", "-accel", accel, "-m", "512M", "-smp", str(smp), "-nodefaults",
            "-no-user-config", "-nographic", "-serial", "stdio", "-kernel", ELF,
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-append", append]


def boot_lines(accel, smp, append, timeout=60):
    t0 = time.monotonic()
    p = subprocess.Popen(["qemu-system-x86_64"] + qemu_args(accel, smp, append), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    lines, ready_ms = [], None
    for raw in p.stdout:
        line = raw.decode(errors="replace").rstrip("\r\n")
        if ready_ms is None and "READY" in line:
            ready_ms = (time.monotonic() - t0) * 1000
        lines.append(line)
    p.wait(timeout=timeout)
    return lines, ready_ms


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        check.failed += 1


check.failed = 0


def test_cmdline(accel, smp):
    lines, ready_ms = boot_lines(accel, smp, "-- fill 1 7; digest; ticks; cpus; tag hello tag; bogus; poweroff")
    ready = [l for l in lines if "READY" in l]
    check(len(ready) == 1 and re.fullmatch(r"ENGRAM-TEST-KERNEL READY cpus=%d mem_mib=512" % smp, ready[0]) is not None,
          "%s smp=%d READY line: %s (%.0f ms)" % (accel, smp, ready, ready_ms or -1))
    want = expected_digest(1, 7)
    check("FILL mib=1 seed=7 digest=%s" % want in lines, "fill digest matches the reference")
    check("DIGEST mib=1 digest=%s" % want in lines, "digest matches fill")
    check(any(re.fullmatch(r"TICKS \d+", l) for l in lines), "ticks")
    check(sum(bool(re.fullmatch(r"CPU \d+ OK [0-9a-f]{16}", l)) for l in lines) == smp and "CPUS online=%d" % smp in lines,
          "cpus reports every CPU")
    check("TAG hello tag gpa=0x300000" in lines, "tag")
    check("ERROR unknown command: bogus" in lines, "unknown command")
    check(lines[-1] == "POWEROFF", "poweroff ends QEMU")
    return ready_ms


def test_interactive(accel):
    # QEMU's stdio keeps the pty's output processing, so lines arrive as "\r\r\n" here.
    child = pexpect.spawn("qemu-system-x86_64", qemu_args(accel, 2, "console test"), timeout=20, encoding="utf-8")
    child.expect(r"READY cpus=2 mem_mib=512\r*\n> ")

    def cmd(text, pattern):
        child.send(text + "\r")
        child.expect(pattern)
        m = child.match
        child.expect("> ")
        return m

    child.send("tickz\x7fs")
    child.expect_exact("tickz\b \bs")
    check(True, "echo and backspace")
    child.send("\r")
    child.expect(r"TICKS (\d+)\r*\n> ")
    cmd("nope", r"ERROR unknown command: nope\r*\n")
    check(True, "unknown command from the console")
    fill = cmd("fill 32 99", r"FILL mib=32 seed=99 digest=([0-9a-f]{16})\r*\n").group(1)
    check(cmd("digest", r"DIGEST mib=32 digest=([0-9a-f]{16})\r*\n").group(1) == fill, "typed digest equals fill")
    cmd("heartbeat 50", r"HEARTBEAT ms=50\r*\n")
    ticks = []
    for _ in range(4):
        child.expect(r"TICK (\d+)\r*\n")
        ticks.append(int(child.match.group(1)))
    steps = {b - a for a, b in zip(ticks, ticks[1:])}
    check(steps == {5}, "heartbeat 50 ms every 5 ticks: %s" % ticks)
    child.send("heartbeat 0\r")
    child.expect(r"HEARTBEAT ms=0\r*\n")
    time.sleep(0.3)
    cmd("dirty 200", r"DIRTY rate_mib_s=200\r*\n")
    time.sleep(1.0)
    t = time.monotonic()
    m = cmd("ticks", r"TICKS (\d+)\r*\n")
    check(time.monotonic() - t < 0.5, "console answers while dirtying (%.0f ms)" % ((time.monotonic() - t) * 1000))
    time.sleep(1.0)
    check(cmd("digest", r"DIGEST mib=32 digest=([0-9a-f]{16})\r*\n").group(1) == fill, "digest unchanged by dirty")
    cmd("dirty 0", r"DIRTY rate_mib_s=0\r*\n")
    child.send("poweroff\r")
    child.expect("POWEROFF")
    child.expect(pexpect.EOF)
    check(True, "interactive session")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcg", action="store_true", help="use TCG instead of KVM")
    args = ap.parse_args()
    accel = "tcg" if args.tcg else "kvm"
    subprocess.run(["make", "-s", "-C", os.path.join(HERE, "..")], check=True)
    for smp in (1, 2):
        test_cmdline(accel, smp)
    test_interactive(accel)
    times = sorted(boot_lines(accel, 2, "-- poweroff")[1] for _ in range(5))
    hinted = sorted(boot_lines(accel, 2, "cpus=2 -- poweroff")[1] for _ in range(5))
    print("boot to READY (-smp 2, %s): median %.0f ms without hint, %.0f ms with cpus=2" % (accel, times[2], hinted[2]))
    print("%d passed, %d failed" % (0 if check.failed else 1, 1 if check.failed else 0))
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
