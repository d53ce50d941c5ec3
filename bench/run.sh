#!/usr/bin/env bash
# Runs every benchmark against a release build; results land in docs/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="/opt/swift/usr/bin:$PATH"
swift build -c release 2>&1 | tail -1
python3 bench/boot_time.py --runs 9 "$@"
