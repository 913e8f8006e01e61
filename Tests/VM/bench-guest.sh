#!/usr/bin/env bash
# Runs inside the VM: dmabuf-bench with the pipelines, saved as JSON and Markdown.
#   bench-guest.sh BIN_DIR OUT_DIR [dmabuf-bench arguments]
#   bench-guest.sh --gate-runs N BIN_DIR OUT_DIR   the regression gate's loops N times (bench-bounds.sh)
set -eu
if [ "$1" = --gate-runs ]; then
    runs=$2 bin=$3 out=$4
    mkdir -p "$out"
    echo "bench-guest: Linux $(uname -r), $(nproc) CPUs: $runs runs of the gate's loops"
    for run in $(seq "$runs"); do
        "$bin/dmabuf-bench" --no-layers --rounds-scale 0.3 --runs 5 --save-json "$out/gate-run-$run.json" \
            >"$out/gate-run-$run.md"
        echo "bench-guest: run $run: $(grep -c '^| ' "$out/gate-run-$run.md") table rows"
    done
    exit 0
fi
bin=$1 out=$2
shift 2
# The host's files are read-only here: GStreamer keeps its plugin registry in /tmp.
export GST_REGISTRY=/tmp/gstreamer-registry.bin
echo "bench-guest: Linux $(uname -r), $(nproc) CPUs"
"$bin/dmabuf-bench" --pipelines --verbose --save-json "$out/bench.json" "$@" | tee "$out/bench.md"
