#!/usr/bin/env bash
# Builds the kernel's own selftests for what DmaBufKit drives — dmabuf-heaps, drivers/dma-buf
# (udmabuf) and sync (sw_sync) — from Debian's linux-source-VERSION, the tree the test kernel
# comes from, cached outside the clone keyed by the source package, its version and this script.
#   selftests.sh [VERSION]   (default 6.1)
# Prints the directory holding the three programs on stdout as its last line.
set -euo pipefail
version=${1:-6.1}
package=linux-source-$version

here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
log() { echo "selftests: $*" >&2; }

ensure_host_deps selftests "$version"

source_version=$(dpkg-query -W -f='${Version}' "$package")
key=$( { cat "$0"; echo "$package $source_version"; } | sha256sum | cut -c1-16)
out="$cache/selftests/$key"
if [ -x "$out/dmabuf-heap" ] && [ -x "$out/udmabuf" ] && [ -x "$out/sync_test" ]; then
    log "cached: $out ($package $source_version)"
    echo "$out"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log "extracting the selftests from /usr/src/$package.tar.xz ($source_version)"
tar -xf "/usr/src/$package.tar.xz" -C "$work" --strip-components=1 --wildcards \
    '*/tools/testing/selftests/kselftest*.h' '*/tools/testing/selftests/dmabuf-heaps/*' \
    '*/tools/testing/selftests/drivers/dma-buf/*' '*/tools/testing/selftests/sync/*' '*/include/uapi/drm/*'
tests="$work/tools/testing/selftests"
mkdir -p "$out.tmp"
# The host's uapi headers (linux-libc-dev) for linux/*; the tree's own for drm/drm.h, which the
# heap test includes (unprocessed, so __user is defined away).
gcc -O2 -Wall -D__user= -idirafter "$work/include/uapi" -o "$out.tmp/dmabuf-heap" "$tests/dmabuf-heaps/dmabuf-heap.c" >&2
gcc -O2 -Wall -I"$tests" -o "$out.tmp/udmabuf" "$tests/drivers/dma-buf/udmabuf.c" >&2
(cd "$tests/sync" && gcc -O2 -std=gnu89 -pthread -I. -o "$out.tmp/sync_test" sync_test.c sync.c sync_alloc.c sync_fence.c \
    sync_merge.c sync_wait.c sync_stress_parallelism.c sync_stress_consumer.c sync_stress_merge.c) >&2
echo "$package $source_version" >"$out.tmp/SOURCE"
rm -rf "$out" && mv "$out.tmp" "$out"
log "built: $out"
echo "$out"
