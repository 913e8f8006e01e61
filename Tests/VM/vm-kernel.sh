#!/usr/bin/env bash
# Builds a test kernel (bzImage) from Debian's linux-source-VERSION with virtme-ng's allnoconfig
# plus Tests/VM/kernel.config, and caches it outside the clone, keyed by a hash of the fragment,
# the source package and its version and the virtme-ng version (its config list is part of the
# result).   vm-kernel.sh [VERSION]   VERSION: a Debian linux-source-* series, 6.1 (default) or 6.12.
# Prints the bzImage path on stdout as its last line; everything else goes to stderr.
set -euo pipefail
version=${1:-6.1}

here=$(cd "$(dirname "$0")" && pwd)
fragment="$here/kernel.config"
. "$here/common.sh"
log() { echo "vm-kernel: $*" >&2; }

ensure_host_deps kernel "$version"

package=linux-source-$version
source_version=$(dpkg-query -W -f='${Version}' "$package")
virtme_version=$(vng --version 2>/dev/null | awk '{print $NF}')
key=$( { cat "$fragment"; echo "$package $source_version"; echo "virtme-ng $virtme_version"; } \
    | sha256sum | cut -c1-16)
out="$cache/vm-kernel/$key"

if [ -s "$out/bzImage" ]; then
    log "cached: $out/bzImage ($package, key $key)"
    echo "$out/bzImage"
    exit 0
fi

src="$cache/src/$package-$source_version"
if [ ! -f "$src/Makefile" ]; then
    log "extracting /usr/src/$package.tar.xz → $src"
    rm -rf "$src.tmp" && mkdir -p "$src.tmp"
    tar -xf "/usr/src/$package.tar.xz" -C "$src.tmp" --strip-components=1
    mv "$src.tmp" "$src"
fi

build="$cache/build/$key"
rm -rf "$build" && mkdir -p "$build"
log "configuring in $build (virtme-configkernel --allnoconfig + $fragment)"
(cd "$src" && virtme-configkernel --allnoconfig --custom "$fragment" "O=$build") >"$build/configure.log" 2>&1 \
    || { tail -20 "$build/configure.log" >&2; log "configuration failed (log: $build/configure.log)"; exit 1; }

# Every line of the fragment must have survived Kconfig: a dropped option means a missing
# dependency, and a kernel that boots without the driver the tests need.
dropped=0
while IFS='=' read -r name value; do
    case "$name" in CONFIG_*) ;; *) continue ;; esac
    if [ "$value" = n ]; then
        grep -qE "^$name=[ym]" "$build/.config" && { log "option still enabled: $name=n"; dropped=1; }
    else
        grep -qxF "$name=$value" "$build/.config" || { log "option dropped by Kconfig (missing dependency?): $name=$value"; dropped=1; }
    fi
done <"$fragment"
[ "$dropped" = 0 ] || exit 1

jobs=$(( $(nproc) + 1 ))
log "building bzImage with -j$jobs (tens of minutes on 2 cores; log: $build/build.log)"
start=$(date +%s)
make -C "$build" -j"$jobs" bzImage >"$build/build.log" 2>&1 \
    || { tail -30 "$build/build.log" >&2; log "build failed (log: $build/build.log)"; exit 1; }
seconds=$(( $(date +%s) - start ))

mkdir -p "$out.tmp"
cp "$build/arch/x86/boot/bzImage" "$build/.config" "$out.tmp/"
echo "$seconds" >"$out.tmp/build-seconds"
rm -rf "$out" && mv "$out.tmp" "$out"
rm -rf "$build"
log "built in $((seconds / 60)) min $((seconds % 60)) s: $out/bzImage"
echo "$out/bzImage"
