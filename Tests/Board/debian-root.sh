#!/usr/bin/env bash
# A minimal Debian 12 root filesystem without Swift, for proving the `make dist` tarball runs
# on a board's userland: debootstrap's minbase plus only the shared libraries the binary links
# (libdrm, libv4l2/libv4lconvert, libpng, libjpeg, zlib, libstdc++) and xz to unpack it. Cached
# outside the clone, keyed by this script (the package list) and the mirror.
#   debian-root.sh   Prints the root's directory as its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../VM/common.sh"
log() { echo "debian-root: $*" >&2; }
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=libdrm2,libv4l-0,libv4lconvert0,libpng16-16,libjpeg62-turbo,zlib1g,libstdc++6,libgcc-s1,xz-utils
key=$( { cat "$0"; echo "$mirror"; } | sha256sum | cut -c1-16)
root="$cache/debian-root/$key"
if [ -x "$root/bin/sh" ] && [ -f "$root/.complete" ]; then
    log "cached: $root"
    echo "$root"
    exit 0
fi
[ "$(id -u)" = 0 ] || { log "debootstrap needs root (sudo make vm-test, or a ready root in DMABUFKIT_CACHE)"; exit 1; }
command -v debootstrap >/dev/null || {
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
}
log "debootstrap bookworm (minbase + $packages) from $mirror into $root"
rm -rf "$root.tmp"
mkdir -p "$(dirname "$root")"
debootstrap --variant=minbase --include="$packages" bookworm "$root.tmp" "$mirror" >"$root.tmp.log" 2>&1 ||
    { tail -20 "$root.tmp.log" >&2; exit 1; }
# What a board's image does not carry: the package caches.
rm -rf "$root.tmp/var/cache/apt/archives/"*.deb "$root.tmp/var/lib/apt/lists/"*
if find "$root.tmp" -name 'libswift*' | grep -q .; then log "the root has Swift libraries"; exit 1; fi
touch "$root.tmp/.complete"
rm -rf "$root" && mv "$root.tmp" "$root" && rm -f "$root.tmp.log"
log "ready: $root ($(du -sh "$root" | cut -f1))"
echo "$root"
