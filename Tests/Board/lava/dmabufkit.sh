#!/bin/sh
# Runs DmaBufKit on a device under test and reports to LAVA (lava-test-case when it is on PATH,
# else the same lines on stdout: "NAME RESULT [MEASUREMENT UNITS]", as test-definitions'
# result.txt). POSIX sh and awk only: a board's image has no bash or Python to spare.
#   dmabufkit.sh [-t TARBALL] [-p PROBE_ARGS] [-s "SCENARIO.yaml ..."] [-i true|false] [-o OUTPUT_DIR]
set -u
tarball="" probe_args="--matrix" scenarios="export.yaml" skip_install=false output=./output
while getopts "t:p:s:i:o:" opt; do
    case "$opt" in
        t) tarball=$OPTARG ;; p) probe_args=$OPTARG ;; s) scenarios=$OPTARG ;;
        i) skip_install=$OPTARG ;; o) output=$OPTARG ;;
        *) echo "usage: $0 [-t TARBALL] [-p PROBE_ARGS] [-s SCENARIOS] [-i true|false] [-o DIR]" >&2; exit 64 ;;
    esac
done
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$output"
output=$(cd "$output" && pwd)
results="$output/results.txt"   # "NAME RESULT [MEASUREMENT UNITS]" per line, reported at the end
: >"$results"

report() {   # NAME RESULT [MEASUREMENT UNITS]
    if command -v lava-test-case >/dev/null 2>&1; then
        if [ $# -ge 4 ]; then lava-test-case "$1" --result "$2" --measurement "$3" --units "$4"
        else lava-test-case "$1" --result "$2"; fi
    else
        echo "$*"
    fi
}

# Install: unpack the tarball into the output directory and put its bin/ first on PATH.
if [ "$skip_install" != true ]; then
    [ -n "$tarball" ] || { echo "dmabufkit.sh: -t TARBALL is required unless -i true" >&2; report install fail; exit 1; }
    case "$tarball" in
        http://* | https://*) wget -q -O "$output/dmabufkit.tar.xz" "$tarball" || curl -fsSL -o "$output/dmabufkit.tar.xz" "$tarball" ;;
        *) cp "$tarball" "$output/dmabufkit.tar.xz" ;;
    esac
    if ! tar -xJf "$output/dmabufkit.tar.xz" -C "$output"; then report install fail; exit 1; fi
    echo "install pass" >>"$results"
    prefix=$(ls -d "$output"/dmabufkit-*/ | head -1)
    PATH="${prefix}bin:$PATH"
    share="${prefix}share/dmabufkit"
else
    share=$(dirname "$(command -v dmabuf-probe)")/../share/dmabufkit
fi

# KTAP → one report per test: nested names joined with '.', characters LAVA refuses as '_';
# the "# NAME: VALUE UNIT" diagnostics before a result become measurement cases of that test.
ktap_to_lava() {   # PREFIX FILE
    awk -v prefix="$1" '
        function clean(s) { gsub(/[^A-Za-z0-9_.-]+/, "_", s); gsub(/^_+|_+$/, "", s); return s }
        { line = $0; match(line, /^ */); depth = RLENGTH / 4; sub(/^ +/, "", line) }
        line ~ /^# Subtest: / { names[depth] = clean(substr(line, 12)); next }
        line ~ /^# [^:]+: -?[0-9.]+ [^ ]+$/ {
            m = line; sub(/^# /, "", m); n = split(m, parts, ": "); split(parts[2], vu, " ")
            measures[++count] = clean(parts[1]) " " vu[1] " " vu[2]; next
        }
        line ~ /^(ok|not ok) [0-9]+ / {
            result = (line ~ /^not ok/) ? "fail" : (line ~ / # SKIP/) ? "skip" : "pass"
            name = line; sub(/^(ok|not ok) [0-9]+ /, "", name); sub(/ # SKIP.*$/, "", name)
            path = prefix
            for (d = 1; d <= depth; d++) path = path "." names[d]
            path = path "." clean(name)
            print path, result
            for (i = 1; i <= count; i++) { split(measures[i], mv, " "); print path "." mv[1], "pass", mv[2], mv[3] }
            count = 0
        }
    ' "$2"
}

dmabuf-probe --version >/dev/null 2>&1 || { report dmabuf-probe fail; exit 1; }
# shellcheck disable=SC2086 # PROBE_ARGS is a list of flags
dmabuf-probe --ktap $probe_args >"$output/probe.ktap" 2>"$output/probe.err"
probe_status=$?
ktap_to_lava probe "$output/probe.ktap" >>"$results"
# 0: everything present works; 2: nothing to test here (no heaps, no udmabuf); else a failure.
case $probe_status in 0) echo "probe pass" ;; 2) echo "probe skip" ;; *) echo "probe fail" ;; esac >>"$results"

if [ -n "$scenarios" ]; then
    files=""
    for scenario in $scenarios; do files="$files $share/scenarios/$scenario"; done
    # shellcheck disable=SC2086
    dmabuf-pipe run $files --ktap --output-dir "$output" >"$output/scenarios.ktap" 2>"$output/scenarios.err"
    ktap_to_lava pipe "$output/scenarios.ktap" >>"$results"
fi

while read -r line; do
    # shellcheck disable=SC2086 # the line is NAME RESULT [MEASUREMENT UNITS]
    report $line
done <"$results"
exit 0
