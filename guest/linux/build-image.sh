#!/usr/bin/env bash
# Builds the Linux guest Engram's end-to-end tests boot:
#   guest/linux/build/bzImage             Debian's stock amd64 kernel (unpacked, never installed)
#   guest/linux/build/initramfs.cpio.gz   busybox-static + ./init, newc cpio, gzip
#   guest/linux/build/vmlinux             the same kernel uncompressed (ELF with a PVH entry note),
#                                         for loaders that skip the bzImage decompressor
# Only the first two paths are printed on stdout (one a line); progress goes to stderr.
# Idempotent: a step is skipped when its output exists and is newer than its inputs,
# so a second run with everything in place does nothing and takes well under a second.
# Needs root (apt-get) on Debian 12; reaches only Debian's apt repositories.
#
# Environment:
#   ENGRAM_KERNEL_PACKAGE   kernel image package to use (default: what linux-image-amd64 depends on)
#   ENGRAM_REFRESH_KERNEL=1 resolve the package again even if a kernel was already fetched
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$here/build
debs=$build/debs
kernel_root=$build/kernel        # dpkg -x target
bzimage=$build/bzImage
initramfs=$build/initramfs.cpio.gz
vmlinux=$build/vmlinux
init_script=$here/init
busybox=/bin/busybox

log() { printf 'build-image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
trap 'log "error: command failed (exit $?) at line $LINENO"' ERR

mkdir -p "$build" "$debs"
exec 9>"$build/.lock"
flock 9   # parallel test runs wait for one build instead of racing

have_apt_lists() {
    local lists_dir=/var/lib/apt/lists/
    eval "$(apt-config shell lists_dir Dir::State::lists/d)"
    compgen -G "${lists_dir%/}/*_Packages*" >/dev/null
}
apt_updated=0
apt_update_once() {
    if [ "$apt_updated" = 0 ]; then
        log "apt-get update"
        apt-get update -qq >&2
        apt_updated=1
    fi
}

# The linux-image-<abi>-amd64 package the linux-image-amd64 metapackage depends on.
resolve_kernel_package() {
    if [ -n "${ENGRAM_KERNEL_PACKAGE:-}" ]; then
        echo "$ENGRAM_KERNEL_PACKAGE"
        return
    fi
    have_apt_lists || apt_update_once
    local name
    name=$(apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
    if [ -z "$name" ]; then
        apt_update_once
        name=$(apt-cache depends linux-image-amd64 2>/dev/null |
            awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
    fi
    [ -n "$name" ] || die "cannot resolve the package linux-image-amd64 depends on"
    echo "$name"
}

# Newest fetched .deb of a package name (empty if none).
fetched_deb() {
    local f
    f=$(ls -t "$debs/$1"_*_amd64.deb 2>/dev/null | head -n1) || true
    echo "$f"
}

# ---- 1. kernel -------------------------------------------------------------
kernel_deb=""
if [ "${ENGRAM_REFRESH_KERNEL:-0}" != 1 ] && [ -z "${ENGRAM_KERNEL_PACKAGE:-}" ] && [ -f "$build/kernel-package" ]; then
    kernel_deb=$(fetched_deb "$(cat "$build/kernel-package")")   # offline: reuse what we fetched
fi
if [ -z "$kernel_deb" ]; then
    pkg=$(resolve_kernel_package)
    kernel_deb=$(fetched_deb "$pkg")
    if [ -z "$kernel_deb" ]; then
        log "apt-get download $pkg"
        if ! (cd "$debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2); then
            apt_update_once
            pkg=$(resolve_kernel_package)
            (cd "$debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) || die "apt-get download $pkg failed"
        fi
        kernel_deb=$(fetched_deb "$pkg")
        [ -n "$kernel_deb" ] || die "apt-get download left no $pkg .deb in $debs"
    fi
    echo "$pkg" >"$build/kernel-package"
fi

if [ -f "$bzimage" ] && [ "$bzimage" -nt "$kernel_deb" ]; then
    log "kernel up to date ($(basename "$kernel_deb"))"
else
    log "unpacking $(basename "$kernel_deb") (dpkg -x, not installed)"
    rm -rf "$kernel_root"
    dpkg -x "$kernel_deb" "$kernel_root"
    vmlinuz=$(ls "$kernel_root"/boot/vmlinuz-* 2>/dev/null | head -n1)
    [ -n "$vmlinuz" ] || die "no boot/vmlinuz-* in $kernel_deb"
    # A bzImage carries "HdrS" at offset 0x202.
    [ "$(dd if="$vmlinuz" bs=1 skip=514 count=4 status=none)" = HdrS ] || die "$vmlinuz is not a bzImage"
    install -m 0644 "$vmlinuz" "$bzimage.tmp"
    mv -f "$bzimage.tmp" "$bzimage"   # mv keeps the fresh mtime: newer than the .deb
    basename "$vmlinuz" | sed 's/^vmlinuz-//' >"$build/kernel-release"
fi

# ---- 1b. uncompressed vmlinux ----------------------------------------------
# The bzImage payload (XZ for Debian) starts at (setup_sects+1)*512 + payload_offset.
if [ -f "$vmlinux" ] && [ "$vmlinux" -nt "$bzimage" ]; then
    log "vmlinux up to date"
else
    log "extracting vmlinux from bzImage"
    command -v xz >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q xz-utils >&2
    setup_sects=$(od -An -tu1 -j497 -N1 "$bzimage" | tr -d ' ')
    [ "$setup_sects" != 0 ] || setup_sects=4
    payload=$(( (setup_sects + 1) * 512 + $(od -An -tu4 -j584 -N4 "$bzimage" | tr -d ' ') ))
    [ "$(od -An -tx1 -j"$payload" -N6 "$bzimage" | tr -d ' ')" = fd377a585a00 ] ||
        die "bzImage payload at $payload is not XZ; extend build-image.sh for this kernel's compression"
    # xz stops at the end of its stream, so feed it without a pipe (tail's SIGPIPE + pipefail).
    xz -dc --single-stream <(tail -c +"$((payload + 1))" "$bzimage") >"$vmlinux.tmp"
    [ "$(od -An -tx1 -N4 "$vmlinux.tmp" | tr -d ' ')" = 7f454c46 ] || die "extracted vmlinux is not ELF"
    chmod 0644 "$vmlinux.tmp"
    mv -f "$vmlinux.tmp" "$vmlinux"
fi

# ---- 2. initramfs ----------------------------------------------------------
if [ ! -x "$busybox" ] || ! dpkg -S "$busybox" 2>/dev/null | grep -q '^busybox-static:'; then
    log "apt-get install busybox-static"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >&2; then
        apt_update_once
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >&2
    fi
fi
[ -x "$busybox" ] || die "$busybox missing after installing busybox-static"

fresh=1
[ -f "$initramfs" ] || fresh=0
for input in "$busybox" "$init_script" "${BASH_SOURCE[0]}"; do
    [ "$fresh" = 1 ] && [ "$initramfs" -nt "$input" ] || fresh=0
done
if [ "$fresh" = 1 ]; then
    log "initramfs up to date"
else
    log "packing initramfs"
    command -v cpio >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q cpio >&2
    staging=$build/initramfs.d
    rm -rf "$staging"
    mkdir -p "$staging"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,etc}
    install -m 0755 "$busybox" "$staging/bin/busybox"
    install -m 0755 "$init_script" "$staging/init"
    # Applet links where busybox expects them (bin/sh, sbin/poweroff, ...).
    "$busybox" --list-full | while read -r applet; do
        [ -e "$staging/$applet" ] || ln -s /bin/busybox "$staging/$applet"
    done
    # The kernel's built-in initramfs has /dev/console too; packing it ours keeps init's
    # console independent of that. mknod needs root, which apt-get above needs anyway.
    mknod -m 0600 "$staging/dev/console" c 5 1 2>/dev/null || log "note: no mknod; init relies on devtmpfs"
    chmod 1777 "$staging/tmp"
    # Reproducible archive: fixed mtimes, owner root, sorted names, no gzip name/time.
    find "$staging" -exec touch -h -d @0 {} +
    (cd "$staging" && find . -mindepth 1 | LC_ALL=C sort |
        cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9 -n >"$initramfs.tmp"
    chmod 0644 "$initramfs.tmp"
    mv -f "$initramfs.tmp" "$initramfs"
    rm -rf "$staging"
fi

log "kernel $(cat "$build/kernel-release" 2>/dev/null || echo '?') from $(basename "$kernel_deb"); uncompressed: $vmlinux"
echo "$bzimage"
echo "$initramfs"
