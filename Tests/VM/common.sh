# Shared by the VM rig scripts (sourced): the cache location and the host packages they need.
# The cache lives outside the clone so that a fresh clone reuses a kernel built before.
cache="${DMABUFKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dmabufkit}"
# virtme-ng is pinned: its config list is part of the kernel cache key.
virtme_ng_version=1.42
PATH="$cache/virtme-ng-$virtme_ng_version/bin:$PATH"

# Installs what is missing, and only that:
#   kernel VERSION — to build a test kernel;  selftests VERSION — to build the kernel's selftests
#   for it;  ktap VERSION — the kernel's KTAP parser;  vm — to boot it with virtme-ng.
# virtme-ng comes from PyPI into a virtualenv under the cache unless a `vng` is on PATH.
ensure_host_deps() {
    local packages missing sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    case "$1" in
        kernel) packages="linux-source-$2 make gcc bc flex bison libelf-dev libssl-dev xz-utils" ;;
        vm)     packages="qemu-system-x86 udev drm-info" ;;
        selftests) packages="linux-source-$2 gcc libc6-dev xz-utils" ;;
        ktap)   packages="linux-source-$2 python3 xz-utils" ;;
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

# Module parameters: vkms with its writeback connector; six vivid instances, the second
# multiplanar, the third on vb2-dma-contig (allocators=0,0,1: it imports only physically
# contiguous memory, as board camera drivers do), the last three only a capture and an output
# node each (node_types 0x101: the benchmark's concurrent streams, each like the first
# instance); a udmabuf size limit above the tests' largest buffer.
# tsc=reliable: under TCG the guest otherwise marks the TSC unstable and falls back to hpet,
# whose thread CPU clock reads a 200 µs busy loop as 0 now and then (dmabuf-bench refuses it).
# cma=128M: the CMA area behind the `reserved` heap and vivid 002's own buffers (the kernel's
# dma-heap selftest allocates 32 × 1 MiB from it and more).
cmdline="vkms.enable_writeback=1 vivid.n_devs=6 vivid.multiplanar=1,2,1,1,1,1 vivid.allocators=0,0,1,0,0,0 vivid.node_types=0xe1d3d,0xe1d3d,0xe1d3d,0x101,0x101,0x101 udmabuf.size_limit_mb=256 tsc=reliable cma=128M"

# Sets `accel` from VM_ACCEL (empty: detected later by vm_choose_accel).
vm_check_accel() {
    accel=${VM_ACCEL:-}
    case "$accel" in kvm | tcg | "") ;; *) log "VM_ACCEL must be kvm or tcg, not '$accel'"; exit 64 ;; esac
}

# Sets `kernel` to an absolute bzImage path: $2 when given, else the cached (built when missing)
# test kernel of series $1.
vm_resolve_kernel() {
    kernel=${2:-}
    if [ -z "$kernel" ]; then
        kernel=$("$here/vm-kernel.sh" "$1" | tail -1)
    fi
    [ -f "$kernel" ] || { log "no kernel image at '$kernel'"; exit 1; }
    kernel=$(cd "$(dirname "$kernel")" && pwd)/$(basename "$kernel")
}

# Sets `kernel_series` and `kernel_images` (parallel arrays) from VM_KERNELS, a list of entries
# SERIES (build or reuse the cached kernel of linux-source-SERIES) or SERIES=PATH (a ready
# bzImage of that series); VM_KERNEL=PATH alone means VM_KERNELS=6.1=PATH. The series names the
# run's artifacts and the source of the kernel's own selftests; nothing branches on it.
vm_kernel_list() {
    local entries entry
    if [ -n "${VM_KERNEL:-}" ]; then entries="6.1=$VM_KERNEL"; else entries=${VM_KERNELS:-6.1 6.12}; fi
    kernel_series=() kernel_images=()
    for entry in $entries; do
        case "$entry" in
            *=*) kernel_series+=("${entry%%=*}") kernel_images+=("${entry#*=}") ;;
            *) kernel_series+=("$entry") kernel_images+=("") ;;
        esac
    done
    for entry in "${kernel_series[@]}"; do
        [[ "$entry" =~ ^[0-9]+\.[0-9]+$ ]] || { log "VM_KERNELS: '$entry' is not a kernel series like 6.1 or 6.12"; exit 64; }
    done
    [ ${#kernel_series[@]} -gt 0 ] || { log "VM_KERNELS is empty"; exit 64; }
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
