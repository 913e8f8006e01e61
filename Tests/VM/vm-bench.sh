#!/usr/bin/env bash
# Runs dmabuf-bench (release build) inside the test VM: the ioctl loops against the C reference
# and the pipelines' CPU per frame against GStreamer; then the loops on the simulated kernel,
# on the host. Same variables as vm-test.sh, plus BENCH_ARGS for dmabuf-bench in the VM.
# Results in .build/bench/: bench.json and bench.md (VM), simulated.json and simulated.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/common.sh"
log() { echo "vm-bench: $*" >&2; }

# Under TCG the loops take about 20 minutes and the pipelines (26 cases, 3 runs) about 25.
vm_timeout=${VM_TIMEOUT:-5400}
vm_check_accel
# One kernel: VM_KERNEL, or the cached (built when missing) 6.1 test kernel.
vm_resolve_kernel 6.1 "${VM_KERNEL:-}"
# GStreamer is the peer the pipelines are measured against; the guest sees the host's files.
ensure_host_deps bench

log "building dmabuf-bench, dmabuf-pipe and the C floor (release) on the host"
cd "$root"
for product in dmabuf-bench dmabuf-pipe dmabuf-bench-floor; do
    ${SWIFT:-swift} build -c release --product "$product" >&2
done
bin=$(${SWIFT:-swift} build -c release --show-bin-path)
out="$root/.build/bench"
rm -rf "$out" && mkdir -p "$out"

vm_choose_accel
log "booting $kernel ($accel) with: $cmdline"
start=$(date +%s)
status=0
timeout "$vm_timeout" vng "${vng_args[@]}" --exec "$here/bench-guest.sh $bin $out ${BENCH_ARGS:-}" 2>&1 | tee "$out/guest.log" \
    || status=${PIPESTATUS[0]}
log "the VM part took $(( $(date +%s) - start )) s ($accel)"
[ "$status" = 124 ] && log "the VM did not finish within $vm_timeout s (VM_TIMEOUT)"
[ "$status" != 0 ] && exit "$status"

log "the loops on the simulated kernel (Swift only), on the host"
"$bin/dmabuf-bench" --simulated --save-json "$out/simulated.json" >"$out/simulated.md"
cat "$out/bench.md"
log "results: $out/bench.md, bench.json (VM), simulated.md, simulated.json (host)"
