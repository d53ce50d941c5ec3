#!/usr/bin/env bash
# The whole test suite: set-up (packages, guest images, build), then every unit and end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="/opt/swift/usr/bin:$PATH"
swift test "$@"
