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
        selftests) packages="linux-source-6.1 gcc libc6-dev xz-utils" ;;
        bench)  packages="qemu-system-x86 udev gstreamer1.0-tools gstreamer1.0-plugins-good gstreamer1.0-plugins-bad" ;;
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

# Module parameters: vkms with its writeback connector; two vivid instances, the second
# multiplanar; a udmabuf size limit above the tests' largest buffer.
# tsc=reliable: under TCG the guest otherwise marks the TSC unstable and falls back to hpet,
# whose thread CPU clock reads a 200 µs busy loop as 0 now and then (dmabuf-bench refuses it).
# cma=128M: the kernel's dma-heap selftest allocates 32 × 1 MiB from the CMA heap and more.
cmdline="vkms.enable_writeback=1 vivid.n_devs=2 vivid.multiplanar=1,2 udmabuf.size_limit_mb=256 tsc=reliable cma=128M"

# Sets `kernel`: VM_KERNEL, or the cached (built when missing) test kernel.
vm_resolve_kernel() {
    accel=${VM_ACCEL:-}
    case "$accel" in kvm | tcg | "") ;; *) log "VM_ACCEL must be kvm or tcg, not '$accel'"; exit 64 ;; esac
    kernel=${VM_KERNEL:-}
    if [ -z "$kernel" ]; then
        kernel=$("$here/vm-kernel.sh" | tail -1)
    fi
    [ -f "$kernel" ] || { log "no kernel image at '$kernel' (VM_KERNEL)"; exit 1; }
    kernel=$(cd "$(dirname "$kernel")" && pwd)/$(basename "$kernel")
}

# Sets `accel` (unless VM_ACCEL did) and `vng_args`, with `out` as the guest's writable directory.
# KVM only when it really runs this guest: /dev/kvm can exist on hosts (nested, PVM) where
# a guest never boots. A working KVM boots and runs `true` in a few seconds.
vm_choose_accel() {
    if [ -z "$accel" ]; then
        accel=tcg
        if [ -w /dev/kvm ]; then
            if timeout 20 vng --run "$kernel" --force-9p --memory 512M --exec true >/dev/null 2>&1; then
                accel=kvm
            else
                log "/dev/kvm is present but a guest does not boot with it within 20 s: using TCG"
            fi
        fi
    fi
    vng_args=(--run "$kernel" --force-9p --memory 2G --cpus 2 --rwdir "$out" --append "$cmdline")
    [ "$accel" = kvm ] || vng_args+=(--disable-kvm)
}
