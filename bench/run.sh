#!/usr/bin/env bash
# Runs every benchmark against a release build; results land in docs/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="/opt/swift/usr/bin:$PATH"
# A statically linked Swift runtime starts about 3 ms sooner: part of every restore.
swift build -c release --static-swift-stdlib 2>&1 | tail -1
python3 bench/boot_time.py --runs 9 "$@"
python3 bench/snapshot_restore.py
python3 bench/live_update.py
python3 bench/page_server.py
python3 bench/inspect.py
python3 bench/migration.py
python3 bench/object_store.py
python3 bench/display.py
python3 bench/devices.py
python3 bench/network.py
python3 bench/memory_sharing.py
python3 bench/jail.py
python3 bench/huge_pages.py
