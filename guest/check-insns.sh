#!/bin/sh
# Scans the kernel's disassembly for instructions that stop KVM's emulator (pvm.md): SSE/AVX/MMX/x87,
# the xsave family, cmpxchg16b, popcnt, rdtscp, movbe, rdpid, and software interrupts anywhere (ring 3
# returns to the kernel with a fault, src/isr.S says why).
set -eu
objdump -d --no-show-raw-insn "$1" | awk -F'\t' '
    /^[0-9a-f]+ <.*>:$/ { fn = $0; next }
    NF < 2 { next }
    {
        split($2, w, " "); m = w[1]; if (m ~ /^(lock|rep|repz|repnz|data16|addr32|cs|ds)$/) m = w[2]
        bad = ($2 ~ /%[xyz]mm|%mm[0-7]|%st/) || m ~ /^(f[a-z0-9]*|xsave.*|xrstor.*|xgetbv|cmpxchg16b|popcnt|rdtscp|movbe|rdpid|emms|ldmxcsr|stmxcsr)$/
        if (m ~ /^(int3|int|into|int1|icebp)$/) bad = 1
        if (bad) { print fn " " $0; n++ }
    }
    END { exit n > 0 }' >&2 || { echo "check-insns: forbidden instructions in $1 (listed above)" >&2; exit 1; }
echo "check-insns: $1 ok"
