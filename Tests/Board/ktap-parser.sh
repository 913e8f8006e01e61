#!/usr/bin/env bash
# The kernel's own KTAP parser (tools/testing/kunit/kunit.py, `kunit.py parse FILE`), extracted
# from Debian's linux-source-VERSION into the cache outside the clone (once per source version),
# under its own tools/testing/kunit path (kunit.py finds the tree's root by it and exits 1 without).
#   ktap-parser.sh [VERSION]   (default 6.1)   Prints the path of kunit.py as its last line.
set -euo pipefail
version=${1:-6.1}
package=linux-source-$version
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../VM/common.sh"
ensure_host_deps ktap "$version"
key=$( { cat "$0"; dpkg-query -W -f='${Version}' "$package"; } | sha256sum | cut -c1-16)
out="$cache/ktap-parser/$key"
parser=$out/tools/testing/kunit/kunit.py
if [ ! -f "$parser" ]; then
    echo "ktap-parser: extracting tools/testing/kunit from /usr/src/$package.tar.xz" >&2
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    tar -xf "/usr/src/$package.tar.xz" -C "$out.tmp" --strip-components=1 --wildcards '*/tools/testing/kunit/*'
    rm -rf "$out" && mv "$out.tmp" "$out"
fi
echo "$parser"
