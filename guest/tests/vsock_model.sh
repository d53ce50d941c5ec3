#!/bin/sh
# Builds the test kernel's ring-3 virtio code for the host with a virtio-vsock device model
# (vsock_model.c) and runs it. Exit status 0 only if every check passed.
set -eu
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
gcc -O1 -g -std=gnu11 -DVIO_HOST_TEST -fsanitize=address,undefined -fno-sanitize-recover=undefined \
    -Wall -Wno-builtin-declaration-mismatch -Wno-address-of-packed-member \
    tests/vsock_model.c src/vio_user.c -o "$out/vsock_model"
ASAN_OPTIONS=detect_leaks=0 "$out/vsock_model"
