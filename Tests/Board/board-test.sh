#!/usr/bin/env bash
# Proves the `make dist` tarball runs where there is no Swift: boots KERNEL on a minimal Debian
# root (debian-root.sh) in which the LAVA runner (lava/dmabufkit.sh) installs the tarball, runs
# `dmabuf-probe --ktap --matrix` and the export scenario with --ktap. Passes when the runner
# reported install, probe and the scenario as pass, the binary's libraries all resolved, the
# root had no Swift library, and the kernel's KTAP parser reads both outputs.
#   board-test.sh KERNEL OUT_DIR      (SWIFT, VM_ACCEL as for vm-test.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../VM/common.sh"
log() { echo "board-test: $*" >&2; }
kernel=$1 out=$2
mkdir -p "$out"
tarball=$("$here/install.sh" --dist | tail -1 | cut -d: -f1)
debian_root=$("$here/debian-root.sh" | tail -1)
parser=$("$here/ktap-parser.sh" 6.1 | tail -1)
# virtme-ng shares a writable directory only inside the root it boots: one per run, removed after.
run=$(mktemp -d "$debian_root/srv/run.XXXXXX")
trap 'rm -rf "$run"' EXIT
cp "$tarball" "$run/dmabufkit.tar.xz"
cp -r "$here/lava" "$here/board-guest.sh" "$run/"
accel=${VM_ACCEL:-tcg}
args=(--run "$kernel" --root "$debian_root" --force-9p --memory 2G --cpus 2 --rwdir "$run" --append "$cmdline")
[ "$accel" = kvm ] || args+=(--disable-kvm)
log "booting $kernel on $debian_root ($accel) with $(basename "$tarball")"
start=$(date +%s)
boot() { timeout 900 vng "${args[@]}" --exec "sh ${run#"$debian_root"}/board-guest.sh ${run#"$debian_root"}" >"$out/vm.log" 2>&1; }
status=0
boot || status=$?
# A guest that never started its script (see vm-test.sh) is booted once more.
if [ ! -s "$run/root.txt" ] && [ "$status" != 124 ]; then
    log "the guest never started (vng exit $status): booting it once more"
    boot || true
fi
seconds=$(( $(date +%s) - start ))
cp -r "$run"/root.txt "$run"/lava.txt "$run"/lava.status "$run"/ldd.txt "$run"/output "$out/" 2>/dev/null || true
rm -f "$out/output/dmabufkit.tar.xz"
python3 - "$out" "$parser" "$seconds" "$(basename "$tarball")" "$(du -b "$tarball" | cut -f1)" <<'PY'
import re, subprocess, sys
out, parser, seconds, name, size = sys.argv[1:]
ok, facts = True, []
def fail(text):
    global ok
    ok = False
    print(f"board-test: {text}", file=sys.stderr)
try:
    results = dict(line.split()[:2] for line in open(f"{out}/output/results.txt") if len(line.split()) >= 2)
    measured = sum(1 for line in open(f"{out}/output/results.txt") if len(line.split()) == 4)
    counts = {r: sum(1 for v in results.values() if v == r) for r in ("pass", "fail", "skip")}
    facts.append(f"LAVA runner: {len(results)} cases ({counts['pass']} pass, {counts['fail']} fail, "
                 f"{counts['skip']} skip), {measured} measurements")
    for case in ("install", "probe", "pipe.export"):
        if results.get(case) != "pass":
            fail(f"{case}: {results.get(case, 'not reported')} (see {out}/lava.txt, {out}/output/)")
    if counts["fail"]:
        fail("failed cases: " + ", ".join(k for k, v in results.items() if v == "fail"))
except OSError as error:
    fail(f"no results from the guest ({error}); see {out}/vm.log, {out}/lava.txt")
root = open(f"{out}/root.txt").read() if __import__("os").path.exists(f"{out}/root.txt") else ""
if "swift libraries in this root: 0" not in root:
    fail(f"the root must have no Swift library: {root.strip() or 'no report'}")
ldd = open(f"{out}/ldd.txt").read() if __import__("os").path.exists(f"{out}/ldd.txt") else "no ldd report"
if "not found" in ldd or "libdrm" not in ldd or "swift" in ldd:
    fail(f"the binary's libraries: {ldd.strip()}")
libraries = sorted(set(re.findall(r"^\s*(\S+\.so[.\d]*)", ldd, re.M)) - {"linux-vdso.so.1"})
for ktap in ("probe", "scenarios"):
    try:
        parsed = subprocess.run([sys.executable, parser, "parse", f"{out}/output/{ktap}.ktap"],
                                capture_output=True, text=True)
        summary = re.search(r"Testing complete\. Ran (\d+) tests: ([^\n]*)", parsed.stdout)
        errors = re.search(r"errors: (\d+)", summary.group(2)) if summary else None
        if not summary or errors or parsed.returncode != 0:
            fail(f"kunit.py parse {ktap}.ktap: exit {parsed.returncode}: {parsed.stdout[-300:]}")
        else:
            facts.append(f"{ktap}.ktap: kunit.py ran {summary.group(1)} tests: {summary.group(2)}")
    except OSError as error:
        fail(f"{ktap}.ktap: {error}")
system = root.splitlines()[1] if len(root.splitlines()) > 1 else "?"
print(f"board-test: {name} ({int(size) / 1e6:.1f} MB) on {system}, no Swift "
      f"({seconds} s; links {', '.join(libraries)}): {'PASSED' if ok else 'FAILED'}: " + "; ".join(facts))
sys.exit(0 if ok else 1)
PY
