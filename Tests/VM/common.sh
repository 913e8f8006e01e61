# Shared by the VM rig scripts (sourced): the cache location and the host packages they need.
# The cache lives outside the clone so that a fresh clone reuses a kernel built before.
cache="${DMABUFKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dmabufkit}"
# virtme-ng is pinned: its config list is part of the kernel cache key.
virtme_ng_version=1.42
PATH="$cache/virtme-ng-$virtme_ng_version/bin:$PATH"

# Installs what is missing, and only that:
#   kernel — to build the test kernel;  vm — to boot it with virtme-ng.
# virtme-ng comes from PyPI into a virtualenv under the cache unless a `vng` is on PATH.
ensure_host_deps() {
    local packages missing sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    case "$1" in
        kernel) packages="linux-source-6.1 make gcc bc flex bison libelf-dev libssl-dev xz-utils" ;;
        vm)     packages="qemu-system-x86 udev" ;;
    esac
    command -v vng >/dev/null || python3 -c 'import venv, ensurepip' 2>/dev/null || packages="$packages python3-venv"
    missing=$(for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
    if [ -n "$missing" ]; then
        echo "host-deps: installing" $missing >&2
        $sudo apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >&2
    fi
    if ! command -v vng >/dev/null; then
        local venv="$cache/virtme-ng-$virtme_ng_version"
        echo "host-deps: installing virtme-ng $virtme_ng_version from PyPI into $venv" >&2
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q "virtme-ng==$virtme_ng_version" >&2
    fi
}
