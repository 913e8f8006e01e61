#!/usr/bin/env bash
# Records the regression gate's bounds (Tests/VM/bench-bounds.txt): the gate's short form of the
# loops (dmabuf-bench --no-layers --rounds-scale 0.3 --runs 5, release build) run RUNS times (5)
# in the test VM on each kernel of VM_KERNELS; per loop the bound is the mean of the runs'
# Swift/C medians and the noise is their range (largest minus smallest, at least 0.02), over
# every run on every kernel: one file for all kernels. Same variables as vm-test.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/common.sh"
log() { echo "bench-bounds: $*" >&2; }

runs=${RUNS:-5}
vm_timeout=${VM_TIMEOUT:-2400}
vm_check_accel
vm_kernel_list
cd "$root"
${SWIFT:-swift} build -c release --product dmabuf-bench >&2
bin=$(${SWIFT:-swift} build -c release --show-bin-path)
out="$root/.build/bench-bounds"
rm -rf "$out" && mkdir -p "$out"

for i in "${!kernel_series[@]}"; do
    vm_resolve_kernel "${kernel_series[$i]}" "${kernel_images[$i]}"
    vm_choose_accel
    log "booting $kernel ($accel): $runs runs of the gate's loops"
    timeout "$vm_timeout" vng "${vng_args[@]}" --exec "$here/bench-guest.sh --gate-runs $runs $bin $out/${kernel_series[$i]}" \
        2>&1 | tee "$out/guest-${kernel_series[$i]}.log" >&2
done

python3 - "$out" "$here/bench-bounds.txt" <<'PY'
import glob, json, sys
out, target = sys.argv[1:3]
medians = {}
for path in sorted(glob.glob(f"{out}/*/gate-run-*.json")):
    for loop in json.load(open(path))["loops"]:
        if loop.get("ratio"):
            medians.setdefault((loop["loop"], loop["parameter"]), []).append(loop["ratio"]["median"])
if not medians:
    sys.exit("bench-bounds: no run gave a ratio")
runs = {len(values) for values in medians.values()}
lines = ["# The regression gate's bounds (written by Tests/VM/bench-bounds.sh, `make bench-bounds`):",
         f"# per loop the mean Swift/C median of {max(runs)} runs of `dmabuf-bench --no-layers --rounds-scale 0.3",
         "# --runs 5` in the test VM over the kernels it booted, and the noise: the range of those medians",
         "# (at least 0.02). `dmabuf-bench --gate` fails when a median passes bound + noise.",
         "# loop | parameter | bound | noise"]
for (loop, parameter), values in medians.items():
    mean = sum(values) / len(values)
    noise = max(max(values) - min(values), 0.02)
    lines.append(f"{loop} | {parameter} | {mean:.3f} | {noise:.3f}")
open(target, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
