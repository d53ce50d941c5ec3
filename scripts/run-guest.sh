#!/usr/bin/env bash
# Boots the test kernel interactively with 2 vCPUs (type `help`; Ctrl-A x quits).
# Extra arguments go to `engram run`, e.g. --memory 1G or --shared-maps /dev/shm/vm:ram.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .build/debug/engram run --kernel guest/build/engram-test-kernel.elf --cpus 2 "$@"
