#!/usr/bin/env bash
# Fuzzes one parser of outside input with libFuzzer: scripts/fuzz.sh TARGET SECONDS
# (TARGET "all" runs every target for SECONDS each). Builds engram-fuzz with
# -sanitize=fuzzer,address into .build-fuzz (once; later runs rebuild what changed), starts from
# the seeds in Fuzz/corpus/TARGET, keeps what it finds new in .build-fuzz/corpus/TARGET, and
# writes an input that crashes, leaks or hangs to Fuzz/crashes/ (fix it, then move the input to
# Fuzz/regressions/TARGET/, which the unit tests replay). Prints libFuzzer's final statistics.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

target=${1:?usage: scripts/fuzz.sh TARGET|all SECONDS}
seconds=${2:?usage: scripts/fuzz.sh TARGET|all SECONDS}
targets=(image snapshot chain state working-set frames object-store control framebuffer rfb virtqueue device)
if [ "$target" = all ]; then selected=("${targets[@]}"); else selected=("$target"); fi
for name in "${selected[@]}"; do
    [[ " ${targets[*]} " == *" $name "* ]] || { echo "fuzz: unknown target $name; expected one of: ${targets[*]}"; exit 2; }
done

if ! log=$(swift build --product engram-fuzz --build-path .build-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING 2>&1); then
    printf '%s\n' "$log" | grep -Ev '^\[[0-9]+/[0-9]+\]' | tail -40
    echo "fuzz: the fuzzing build failed"
    exit 1
fi
binary=.build-fuzz/debug/engram-fuzz
mkdir -p Fuzz/crashes
status=0
for name in "${selected[@]}"; do
    mkdir -p ".build-fuzz/corpus/$name"
    echo "== $name ($seconds s)"
    # Inputs up to 64 KiB (SeedCorpus.inputLimit); 10 s for one input counts as a hang.
    if ! ENGRAM_FUZZ_TARGET="$name" "$binary" ".build-fuzz/corpus/$name" "Fuzz/corpus/$name" \
        -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="Fuzz/crashes/$name-" 2> ".build-fuzz/$name.log"; then
        status=1
        grep -E "ERROR|SUMMARY|Test unit written" ".build-fuzz/$name.log" | head -5
    fi
    # One row per target: executions, executions per second, inputs that reached new code.
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' ".build-fuzz/$name.log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' ".build-fuzz/$name.log")
    added=$(sed -n 's/^stat::new_units_added: *//p' ".build-fuzz/$name.log")
    outcome=$([ -n "$(ls Fuzz/crashes/"$name"-* 2>/dev/null)" ] && echo "crash: $(ls Fuzz/crashes/"$name"-* | head -1)" || echo "no crash")
    echo "| $name | $seconds | ${executions:-?} | ${rate:-?} | ${added:-?} | $outcome |"
    # Inputs the fuzzer made that reached new code stay in .build-fuzz/corpus for the next run.
done
exit $status
