#!/usr/bin/env python3
"""Lazy restore from a page server over loopback, with and without working-set prefetch, beside an
eager copy over the same link, in one run.

A 1 GiB test-kernel guest (cpus=1) runs `fill 512 7` from its command line and is snapshotted
paused. `engram serve` serves the snapshot on 127.0.0.1. Each restore is
`engram restore tcp://127.0.0.1:PORT --memory MODE --api-socket S`, and the workload after it is
the same every time: `ticks` (the guest answers), then `digest` (the guest reads the 512 MiB it
filled). Per restore:

- answer_ms: process start → the `TICKS` line answering `ticks`, typed at once: the guest runs;
- workload_ms: process start → the `DIGEST` line (the digest is checked against the filled one);
- total_ms: the VMM's `restore_milliseconds` plus the pager's `fill_milliseconds` (lazy: every
  page present); for copy, all pages are present before the guest starts, so total = restore;
- demand faults, fault latency p50/p99 (fault message read → page installed, over the network),
  bytes received and requests, from GET /vm/memory/stats once the restore is complete.

Modes: `lazy` (`--no-prefetch`), `lazy+ws` (prefetching the working set recorded once, before the
measured runs, by a restore with `--record-working-set 15` running the same workload), `copy`
(every page fetched before the guest starts: the eager baseline). Runs alternate (lazy, lazy+ws,
copy, lazy, ...) after one unrecorded warm-up of each. Every connection runs over TLS 1.3 (the secret as an external
pre-shared key); `lazy-plaintext` and `copy-plaintext` are the same restores from a second `engram serve` of the same
snapshot with `--insecure-plaintext` on both ends, for the cost of TLS: throughput = MiB received ÷ total_ms (copy: the
filled MiB). Writes docs/results/page_server.md and .json.
"""
import argparse, ctypes, json, os, platform, re, secrets, select, signal, statistics, subprocess, sys, tempfile, time
from datetime import datetime, timezone

from benchlib import PROCESSES, Child, die_with_parent, snapshot_filled_guest, restore_and_digest, median_of

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def restore(args, tmp, url, secret, mode, digest, extra=()):
    memory = "copy" if mode.startswith("copy") else "lazy"
    options = ["--memory", memory, "--secret-file", secret, *extra]
    if mode.endswith("-plaintext"):
        options.append("--insecure-plaintext")
    if mode.startswith("lazy") and mode != "lazy+ws":
        options.append("--no-prefetch")
    if memory == "lazy" and args.cluster:
        options += ["--fault-cluster-pages", str(args.cluster)]
    return restore_and_digest(args.engram, tmp, mode, url, digest, options, args.fill_mib)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engram", default=os.path.join(ROOT, ".build/release/engram"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--memory", default="1G")
    parser.add_argument("--fill-mib", type=int, default=512)
    parser.add_argument("--record-seconds", type=float, default=40)
    parser.add_argument("--tmpdir", default="/var/tmp")
    parser.add_argument("--cluster", type=int, default=0, help="--fault-cluster-pages for the lazy restores (0: Engram's default)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="engram-bench-ps-", dir=args.tmpdir)
    try:
        secret = os.path.join(tmp, "secret")
        with open(os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(secrets.token_hex(32))
        print("== snapshot", file=sys.stderr, flush=True)
        path, digest = snapshot_filled_guest(args.engram, tmp, args.memory, args.fill_mib)
        server = Child([args.engram, "serve", path, "--listen", "127.0.0.1:0", "--secret-file", secret])
        _, match = server.wait_for(re.compile(rb"on 127\.0\.0\.1:(\d+)"), stream="err")
        url = f"tcp://127.0.0.1:{int(match.group(1))}"
        plain_server = Child([args.engram, "serve", path, "--listen", "127.0.0.1:0", "--secret-file", secret, "--insecure-plaintext"])
        _, match = plain_server.wait_for(re.compile(rb"on 127\.0\.0\.1:(\d+)"), stream="err")
        plain_url = f"tcp://127.0.0.1:{int(match.group(1))}"
        print("== recording the working set", file=sys.stderr, flush=True)
        # One page per fault and no background fill while recording: every touch is a demand fault,
        # so this run also measures demand-fault latency alone, with nothing competing.
        recorded = restore(args, tmp, url, secret, "record", digest,
                           ["--record-working-set", str(args.record_seconds), "--fault-cluster-pages", "1"])
        ws_pages = 0
        with open(path + ".workingset", "rb") as f:
            ws_pages = int.from_bytes(f.read(16)[12:16], "little")
        modes = ("lazy", "lazy+ws", "copy", "lazy-plaintext", "copy-plaintext")
        samples = {mode: [] for mode in modes}
        for run in range(args.runs + 1):
            for mode in modes:
                sample = restore(args, tmp, plain_url if mode.endswith("-plaintext") else url, secret, mode, digest)
                if run > 0:
                    samples[mode].append(sample)
                print(f"   run {run} {mode}: {json.dumps({k: round(v, 2) for k, v in sample.items()})}", file=sys.stderr, flush=True)
        server.stop()
        plain_server.stop()
    finally:
        for process in list(PROCESSES):
            process.kill()
        subprocess.run(["rm", "-rf", tmp])

    keys = ("answer_ms", "workload_ms", "total_ms", "demand_faults", "fill_wait_faults", "fault_p50_us", "fault_p99_us",
            "bytes_received", "requests", "prefetch_pages", "throughput_mib_s")
    summary = {mode: {key: median_of(samples[mode], key) for key in keys} for mode in modes}
    lazy, ws, copy = summary["lazy"], summary["lazy+ws"], summary["copy"]
    removed = 1 - ws["demand_faults"] / lazy["demand_faults"] if lazy["demand_faults"] else None
    ratios = {
        "answer_copy_over_lazy": round(copy["answer_ms"] / lazy["answer_ms"], 2),
        "answer_copy_over_lazy_ws": round(copy["answer_ms"] / ws["answer_ms"], 2),
        "workload_copy_over_lazy_ws": round(copy["workload_ms"] / ws["workload_ms"], 2),
        "workload_lazy_over_lazy_ws": round(lazy["workload_ms"] / ws["workload_ms"], 2),
        "demand_faults_removed_by_working_set": round(removed, 3) if removed is not None else None,
        "tls_over_plaintext_throughput_copy": round(copy["throughput_mib_s"] / summary["copy-plaintext"]["throughput_mib_s"], 3),
        "tls_over_plaintext_throughput_lazy": round(lazy["throughput_mib_s"] / summary["lazy-plaintext"]["throughput_mib_s"], 3),
    }
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
        "guest": {"memory": args.memory, "filled_mib": args.fill_mib, "cpus": 1},
        "runs": args.runs, "link": "loopback (127.0.0.1)", "working_set_pages": ws_pages,
        "recording_run": {k: round(v, 2) for k, v in recorded.items()},
        "median": summary, "ratios": ratios,
        "targets": {"fault_p50_us_max": 50, "fault_p50_us_demand_only": recorded["fault_p50_us"], "fault_p50_us_lazy_with_fill": lazy["fault_p50_us"],
                    "working_set_removes_at_least": 0.8, "working_set_removes": ratios["demand_faults_removed_by_working_set"]},
        "samples": samples,
    }
    os.makedirs(os.path.join(ROOT, "docs/results"), exist_ok=True)
    with open(os.path.join(ROOT, "docs/results/page_server.json"), "w") as f:
        json.dump(result, f, indent=2)
    mib = lambda b: f"{b / (1 << 20):.1f}" if b is not None else "–"
    rows = [f"| {mode} | {s['answer_ms']:.1f} | {s['workload_ms']:.1f} | {s['total_ms']:.1f} | {s['demand_faults'] if s['demand_faults'] is not None else '–'} "
            f"| {s['fault_p50_us'] if s['fault_p50_us'] is not None else '–'} | {s['fault_p99_us'] if s['fault_p99_us'] is not None else '–'} "
            f"| {mib(s['bytes_received'])} | {s['throughput_mib_s']:.0f} |" for mode, s in summary.items()]
    with open(os.path.join(ROOT, "docs/results/page_server.md"), "w") as f:
        f.write(f"""# Restore from a page server (bench/page_server.py)

{result['date']}, {platform.node()}; release build; {args.memory} test-kernel guest with {args.fill_mib} MiB filled, 1 vCPU;
`engram serve` on 127.0.0.1; medians of {args.runs} runs per mode after a warm-up, modes alternating. Workload after
each restore: `ticks` (answer), then `digest` of the {args.fill_mib} MiB. The working set ({ws_pages} pages) was recorded
once by a restore with `--record-working-set {args.record_seconds:g}` running the same workload.

| mode | guest answers (ms) | workload done (ms) | all memory present (ms) | demand faults | fault p50 (µs) | fault p99 (µs) | MiB received | MiB/s |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
""" + "\n".join(rows) + f"""

- TLS: every mode but the `-plaintext` ones runs over TLS 1.3 ({subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()}; the secret as an external
  pre-shared key, AES-128-GCM; no kTLS in this host's kernel, so encryption is in user space on the same 2 cores). Throughput over TLS
  is {ratios['tls_over_plaintext_throughput_copy']:.0%} of plaintext for copy and {ratios['tls_over_plaintext_throughput_lazy']:.0%} for lazy (target ≥ 70%);
  fault p50 {lazy['fault_p50_us']} µs over TLS vs {summary['lazy-plaintext']['fault_p50_us']} µs plaintext (lazy, with the fill competing).
- lazy: `--memory lazy --no-prefetch`; lazy+ws: `--memory lazy` prefetching the working set; copy: `--memory copy` over the same link (every page before the guest starts).
- Guest answers {ratios['answer_copy_over_lazy']}× sooner lazily than with the eager copy ({ratios['answer_copy_over_lazy_ws']}× with the working set).
- The working set removes {ratios['demand_faults_removed_by_working_set']:.1%} of demand faults (target ≥ 80%); the workload finishes {ratios['workload_lazy_over_lazy_ws']}× sooner with it.
- Demand-fault latency (from reading the fault message to the page being installed: request, server read, answer, CRC check, UFFDIO_COPY), one page per fault:
  - alone (the recording run: no background fill, {recorded['demand_faults']} faults): p50 {recorded['fault_p50_us']} µs, p99 {recorded['fault_p99_us']} µs (target p50 ≤ 50 µs over loopback);
  - during a lazy restore, competing with the background fill for the 2 CPUs (few faults: the fill reads ahead of each one): p50 {lazy['fault_p50_us']} µs, p99 {lazy['fault_p99_us']} µs (medians over runs).
- Pages received equal the snapshot's data pages plus the few zero pages inside fetched runs: no page is fetched twice.
- Recording run (`--record-working-set {args.record_seconds:g} --fault-cluster-pages 1`): {json.dumps(result['recording_run'])}
""")
    print(json.dumps({"median": summary, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
