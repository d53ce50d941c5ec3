#!/usr/bin/env bash
# Runs the unit tests (every test target but EndToEndTests, which boots guests through the
# engram binary) under a sanitizer: scripts/sanitizers.sh address|thread [FILTER].
# Builds into .build-address or .build-thread (the first build takes several minutes on two
# cores; later ones rebuild what changed).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

sanitizer=${1:?usage: scripts/sanitizers.sh address|thread [FILTER]}
filter=${2:-}
case "$sanitizer" in
    address)
        # The suppression files name bugs of the Swift runtime, Foundation and XCTest, not Engram's.
        # Leaks are checked (SANITIZER_LEAKS=0 turns that off).
        export ASAN_OPTIONS="detect_leaks=${SANITIZER_LEAKS:-1}:suppressions=$PWD/scripts/sanitizer-suppressions.asan"
        export LSAN_OPTIONS="suppressions=$PWD/scripts/sanitizer-suppressions.lsan"
        ;;
    thread)
        # Engram's locks are pthread mutexes (LinuxSystem's Locked), which ThreadSanitizer sees;
        # the toolchain's Synchronization.Mutex is built without it and would be reported as races.
        export TSAN_OPTIONS="halt_on_error=1:suppressions=$PWD/scripts/sanitizer-suppressions.tsan"
        ;;
    *) echo "sanitizers: expected address or thread, not $sanitizer"; exit 2 ;;
esac
build=${SANITIZER_BUILD_PATH:-.build-$sanitizer}
if ! log=$(swift build --build-tests --sanitize="$sanitizer" --build-path "$build" 2>&1); then
    printf '%s\n' "$log" | grep -Ev '^\[[0-9]+/[0-9]+\]' | tail -40
    echo "sanitizers: the $sanitizer build failed"
    exit 1
fi
arguments=(--skip-build --sanitize="$sanitizer" --build-path "$build" --skip EndToEndTests)
[ -n "$filter" ] && arguments+=(--filter "$filter")
swift test "${arguments[@]}"
