#!/usr/bin/env bash
# Runs the unit tests (every test target but EndToEndTests, which boots guests through the
# engram binary) under a sanitizer: scripts/sanitizers.sh address|thread [FILTER].
# Builds into .build-address or .build-thread (the first build takes several minutes on two
# cores; later ones rebuild what changed).
#
# scripts/sanitizers.sh thread-vmm [FILTER] runs the end-to-end tests against an engram built
# with ThreadSanitizer instead, and fails only on a race report: the VMM's own threads (vCPUs,
# device I/O, fault handlers, fetchers, servers) under real guests. Its seccomp filters run in
# audit mode there (ThreadSanitizer makes calls of its own), so the tests that expect a filter to
# stop the VMM are skipped, and so are those whose VMM forks or execs itself (forks, live updates,
# the jail): ThreadSanitizer cannot follow a threaded process that forks without exec. Tests may
# also fail by running slower; their results are printed, the reports decide.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

sanitizer=${1:?usage: scripts/sanitizers.sh address|thread|thread-vmm [FILTER]}
filter=${2:-}
build=${SANITIZER_BUILD_PATH:-.build-${sanitizer%-vmm}}
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
    thread-vmm)
        if ! log=$(swift build --product engram --sanitize=thread --build-path "$build" 2>&1 && swift build --build-tests 2>&1); then
            printf '%s\n' "$log" | grep -Ev '^\[[0-9]+/[0-9]+\]' | tail -40
            echo "sanitizers: the build failed"
            exit 1
        fi
        reports="$build/vmm-reports"
        rm -rf "$reports" && mkdir -p "$reports"
        skipped="SeccompTests|ForkTests|LiveUpdateTests|JailTests|LiveUpdate|aNewProcessThatCannotContinue"
        ENGRAM_BINARY="$PWD/$build/debug/engram" ENGRAM_SECCOMP_AUDIT=1 \
            TSAN_OPTIONS="log_path=$PWD/$reports/report:exitcode=0:suppressions=$PWD/scripts/sanitizer-suppressions.tsan" \
            swift test --skip-build --filter "${filter:-EndToEndTests}" --skip "$skipped" || true
        races=$(grep -l "WARNING: ThreadSanitizer" "$reports"/report.* 2>/dev/null || true)
        if [ -n "$races" ]; then
            echo "sanitizers: ThreadSanitizer reported races in the VMM: $races"
            exit 1
        fi
        echo "sanitizers: no race reported by the VMMs ($(ls "$reports" | wc -l) report files of other kinds in $reports)"
        exit 0
        ;;
    *) echo "sanitizers: expected address, thread or thread-vmm, not $sanitizer"; exit 2 ;;
esac
if ! log=$(swift build --build-tests --sanitize="$sanitizer" --build-path "$build" 2>&1); then
    printf '%s\n' "$log" | grep -Ev '^\[[0-9]+/[0-9]+\]' | tail -40
    echo "sanitizers: the $sanitizer build failed"
    exit 1
fi
arguments=(--skip-build --sanitize="$sanitizer" --build-path "$build" --skip EndToEndTests)
[ -n "$filter" ] && arguments+=(--filter "$filter")
swift test "${arguments[@]}"
