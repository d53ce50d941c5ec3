"""What the benchmarks that drive VMs through their consoles share: a child process read
unbuffered from pipes, killed with the bench (PR_SET_PDEATHSIG), and the list of children still
running so the bench can kill them at the end."""
import ctypes, os, select, signal, subprocess, time

LIBC = ctypes.CDLL(None, use_errno=True)
PROCESSES = []


def die_with_parent():
    LIBC.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no VM outlives the bench


class Child:
    """A process with stdout (the guest console) and stderr on pipes, read unbuffered."""

    def __init__(self, command):
        self.command = command
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        preexec_fn=die_with_parent)
        PROCESSES.append(self.process)
        self.out, self.err, self.scanned = b"", b"", 0

    def pump(self, timeout):
        streams = [s for s in (self.process.stdout, self.process.stderr) if not s.closed]
        if not streams:
            return False
        ready, _, _ = select.select(streams, [], [], max(timeout, 0))
        for stream in ready:
            data = os.read(stream.fileno(), 1 << 16)
            if not data:
                stream.close()
            elif stream is self.process.stdout:
                self.out += data
            else:
                self.err += data
        return True

    def wait_for(self, pattern, timeout=300, stream="out"):
        """Waits for `pattern` in stdout (after the last match) or stderr; returns (time, match)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.out if stream == "out" else self.err
            match = pattern.search(text, self.scanned if stream == "out" else 0)
            if match:
                if stream == "out":
                    self.scanned = match.end()
                return time.monotonic(), match
            if time.monotonic() > deadline:
                raise RuntimeError(f"timeout waiting for {pattern.pattern!r}: {self.out[-300:]!r} {self.err[-500:]!r}")
            if not self.pump(deadline - time.monotonic()) or self.process.poll() is not None:
                while self.pump(0):
                    pass
                text = self.out if stream == "out" else self.err
                if not pattern.search(text, self.scanned if stream == "out" else 0):
                    raise RuntimeError(f"{self.command[1]} exited with {self.process.poll()}: {self.err[-600:]!r}")

    def send(self, text):
        self.process.stdin.write(text.encode())
        self.process.stdin.flush()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            stream.close()
        PROCESSES.remove(self.process)
