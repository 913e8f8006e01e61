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
# debootstrap needs root: sudo when not root (as for the Debian packages).
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
command -v debootstrap >/dev/null || {
    $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq debootstrap >&2
}
log "debootstrap bookworm (minbase + $packages) from $mirror into $root"
$sudo rm -rf "$root.tmp"
mkdir -p "$(dirname "$root")"
$sudo debootstrap --variant=minbase --include="$packages" bookworm "$root.tmp" "$mirror" >"$root.tmp.log" 2>&1 ||
    { tail -20 "$root.tmp.log" >&2; exit 1; }
# What a board's image does not carry: the package caches. Readable by all (the VM reads it
# over 9p as the user who boots it); /srv takes each run's directory.
$sudo rm -rf "$root.tmp/var/cache/apt/archives/"*.deb "$root.tmp/var/lib/apt/lists/"*
$sudo chmod -R a+rX "$root.tmp"
$sudo chmod 1777 "$root.tmp/srv"
if find "$root.tmp" -name 'libswift*' | grep -q .; then log "the root has Swift libraries"; exit 1; fi
$sudo touch "$root.tmp/.complete"
$sudo rm -rf "$root" && $sudo mv "$root.tmp" "$root" && rm -f "$root.tmp.log"
log "ready: $root ($(du -sh "$root" | cut -f1))"
echo "$root"
