#!/usr/bin/env python3
"""How fast `engram mem search` and `engram mem stats` read an image held in the page cache, beside a
plain sequential read of the same file (`dd bs=4M of=/dev/null`), in one run.

Images (1 GiB of guest memory each, read once before timing so they sit in the page cache):
- `random`: a raw RAM file of 1 GiB of random bytes: every page stored, unique and non-zero (the
  worst case: nothing to skip, every page hashed);
- `snapshot`: an Engram snapshot of a 1 GiB test-kernel guest that filled 512 MiB (`fill 512 7`):
  the usual case, half the memory zero and not stored.

Per image and tool, medians of --runs runs, tools alternating. Throughput is guest memory bytes per
second for engram (1 GiB / time) and file bytes per second for dd. The search pattern is absent, so
the whole image is scanned. Writes docs/results/inspect.md and .json. Target: search and stats at
>= 2 GB/s.
"""
import argparse, json, os, platform, re, statistics, subprocess, sys, tempfile, time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL = os.path.join(ROOT, "guest/build/engram-test-kernel.elf")
GIB = 1 << 30


def make_random(path):
    with open("/dev/urandom", "rb") as source, open(path, "wb") as out:
        for _ in range(GIB // (16 << 20)):
            out.write(source.read(16 << 20))


def make_snapshot(engram, tmp, path):
    api = os.path.join(tmp, "vm.sock")
    guest = subprocess.Popen([engram, "run", "--kernel", KERNEL, "--memory", "1G", "--cpus", "1",
                              "--cmdline", "cpus=1 -- fill 512 7", "--api-socket", api],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    output = b""
    while b"FILL " not in output or not output.rstrip().endswith(b">"):
        chunk = os.read(guest.stdout.fileno(), 65536)
        if not chunk:
            sys.exit("bench: the guest ended before its fill finished")
        output += chunk
    subprocess.run([engram, "snapshot", api, path, "--stay-paused"], check=True, capture_output=True, timeout=600)
    guest.kill()
    guest.wait()


def timed(command, ok=(0,)):
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if result.returncode not in ok:
        sys.exit(f"bench: {' '.join(command)} failed: {result.stderr.decode().strip()}")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engram", default=os.path.join(ROOT, ".build/release/engram"))
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="engram-bench-inspect-") as tmp:
        images = {"random": os.path.join(tmp, "random.raw"), "snapshot": os.path.join(tmp, "vm.snap")}
        make_random(images["random"])
        make_snapshot(args.engram, tmp, images["snapshot"])
        tools = {
            "dd": lambda p: (["dd", f"if={p}", "of=/dev/null", "bs=4M", "status=none"], (0,)),
            "search": lambda p: ([args.engram, "mem", "search", p, "engram-bench-absent-pattern", "--layout", "flat"], (1,)),
            "stats": lambda p: ([args.engram, "mem", "stats", p, "--layout", "flat"], (0,)),
        }
        samples = {image: {tool: [] for tool in tools} for image in images}
        for image, path in images.items():
            timed(tools["dd"](path)[0])  # into the page cache
            for _ in range(args.runs):
                for tool, make in tools.items():
                    command, ok = make(path)
                    samples[image][tool].append(timed(command, ok))
        sizes = {image: os.path.getsize(path) for image, path in images.items()}
    summary, ratios = {}, {}
    for image, by_tool in samples.items():
        summary[image] = {}
        for tool, times in by_tool.items():
            seconds = statistics.median(times)
            volume = sizes[image] if tool == "dd" else GIB
            summary[image][tool] = {"median_ms": round(seconds * 1000, 1), "gb_per_s": round(volume / seconds / 1e9, 2)}
        for tool in ("search", "stats"):
            ratios[f"{image}_{tool}_vs_dd"] = round(summary[image][tool]["gb_per_s"] / summary[image]["dd"]["gb_per_s"], 2)
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": platform.node(), "runs": args.runs,
              "file_bytes": sizes, "guest_memory_bytes": GIB, "median": summary, "ratios": ratios,
              "target_gb_per_s": 2.0,
              "target_met": all(summary[i][t]["gb_per_s"] >= 2.0 for i in summary for t in ("search", "stats")),
              "samples_s": samples}
    os.makedirs(os.path.join(ROOT, "docs/results"), exist_ok=True)
    with open(os.path.join(ROOT, "docs/results/inspect.json"), "w") as f:
        json.dump(result, f, indent=2)
    rows = []
    for image in summary:
        for tool in tools:
            s = summary[image][tool]
            ratio = "" if tool == "dd" else f"{ratios[f'{image}_{tool}_vs_dd']:.2f}"
            rows.append(f"| {image} | {tool} | {s['median_ms']:.1f} | {s['gb_per_s']:.2f} | {ratio} |")
    with open(os.path.join(ROOT, "docs/results/inspect.md"), "w") as f:
        f.write(f"""# engram mem: search and stats throughput (bench/inspect.py)

{result['date']}, {platform.node()}; release build; images in the page cache; medians of {args.runs} runs, tools
alternating. `random`: a 1 GiB raw file of random bytes (every page stored and unique). `snapshot`: an Engram
snapshot of a 1 GiB test-kernel guest that filled 512 MiB ({sizes['snapshot'] / GIB:.2f} GiB file, zero pages not
stored). engram's rate is guest memory (1 GiB) per second; dd's is file bytes per second (`dd bs=4M of=/dev/null`).
The search pattern is absent, so every byte is scanned.

| image | tool | median (ms) | GB/s | ÷ dd |
|---|---|---:|---:|---:|
""" + "\n".join(rows) + f"""

Target: search and stats at ≥ 2 GB/s — {'met' if result['target_met'] else 'NOT met'}.
""")
    print(open(os.path.join(ROOT, "docs/results/inspect.md")).read())


if __name__ == "__main__":
    main()
