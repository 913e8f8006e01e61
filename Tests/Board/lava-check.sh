#!/usr/bin/env bash
# Checks the LAVA material with LAVA's own tooling (lava-common from Debian): the test definition
# against the test-definition schema, the example job against the job schema (strict); then runs
# the definition's runner on KTAP from the simulated kernel with a stand-in lava-test-case that
# records its calls, and checks every KTAP result and measurement became one call. LAVA is
# Debian's, so Debian's python3 (/usr/bin/python3), whatever python3 is first on PATH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SWIFT=${SWIFT:-swift}
/usr/bin/python3 -c 'import lava_common' 2>/dev/null || {
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq lava-common
}
/usr/bin/python3 - "$here/lava" <<'PY'
import sys, yaml
from lava_common.schemas import validate
from lava_common.schemas.test.testdef import validate as validate_testdef
lava = sys.argv[1]
definition = yaml.safe_load(open(f"{lava}/dmabufkit.yaml"))
validate_testdef(definition)
validate(yaml.safe_load(open(f"{lava}/qemu-job.yaml")), strict=True)
print(f"lava-check: dmabufkit.yaml is a valid LAVA test definition ({len(definition['run']['steps'])} run steps, "
      f"params {', '.join(definition['params'])}); qemu-job.yaml is a valid LAVA job (strict)")
PY

# The runner, as LAVA calls it, on the simulated kernel's tools (no tarball: -i true, tools on PATH).
"$SWIFT" build --product dmabuf >&2
bin=$("$SWIFT" build --show-bin-path)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/share/dmabufkit"
# --simulated goes after the subcommand: `dmabuf pipe run … --simulated`.
printf '#!/bin/sh\nexec %s probe --simulated "$@"\n' "$bin/dmabuf" >"$work/bin/dmabuf-probe"
printf '#!/bin/sh\nsub=$1; shift; exec %s pipe "$sub" --simulated "$@"\n' "$bin/dmabuf" >"$work/bin/dmabuf-pipe"
printf '#!/bin/sh\necho "$*" >>%s/calls\n' "$work" >"$work/bin/lava-test-case"
chmod +x "$work/bin/"*
ln -s "$(cd "$here/../Scenarios" && pwd)" "$work/share/dmabufkit/scenarios"
PATH="$work/bin:$PATH" sh "$here/lava/dmabufkit.sh" -i true -p "--matrix" -s "export.yaml copy.yaml" -o "$work/output" >&2
python3 - "$work" <<'PY'
import re, sys
work = sys.argv[1]
calls = open(f"{work}/calls").read().splitlines()
ktap = open(f"{work}/output/probe.ktap").read() + open(f"{work}/output/scenarios.ktap").read()
results = len(re.findall(r"^\s*(?:not )?ok \d+ ", ktap, re.M))
measures = len(re.findall(r"^\s*# [^:]+: -?[0-9.]+ \S+$", ktap, re.M))
passed = sum(" --result pass" in c for c in calls)
bad = [c for c in calls if not re.fullmatch(r"[A-Za-z0-9_.-]+ --result (pass|fail|skip)( --measurement -?[0-9.]+ --units \S+)?", c)]
expected = results + measures + 1  # and the probe's own exit verdict
print(f"lava-check: the runner made {len(calls)} lava-test-case calls ({passed} pass) for {results} KTAP results "
      f"and {measures} measurements")
if len(calls) != expected or bad or "probe --result pass" not in calls or "pipe.export --result pass" not in calls:
    sys.exit(f"lava-check: expected {expected} well-formed calls incl. probe and pipe.export passing; malformed: {bad[:5]}")
PY
