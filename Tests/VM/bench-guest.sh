#!/usr/bin/env bash
# Runs inside the VM: dmabuf-bench with the pipelines, saved as JSON and Markdown.
#   bench-guest.sh BIN_DIR OUT_DIR [dmabuf-bench arguments]
set -eu
bin=$1 out=$2
shift 2
# The host's files are read-only here: GStreamer keeps its plugin registry in /tmp.
export GST_REGISTRY=/tmp/gstreamer-registry.bin
echo "bench-guest: Linux $(uname -r), $(nproc) CPUs"
"$bin/dmabuf-bench" --pipelines --verbose --save-json "$out/bench.json" "$@" | tee "$out/bench.md"
