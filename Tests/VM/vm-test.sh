#!/usr/bin/env bash
# Runs the device tests, dmabuf-probe, the scenario suite and the kernel's own selftests inside a
# VM booted with virtme-ng, once per test kernel:
#   VM_KERNELS="6.1 6.12"       kernels to run (default both): SERIES builds or reuses the cached
#                               kernel of Debian's linux-source-SERIES; SERIES=PATH uses a ready one
#   VM_KERNEL=path/to/bzImage   one ready kernel, instead (the 6.1 series)
#   VM_ACCEL=kvm|tcg            skip the KVM detection
#   SWIFT=swift                 the toolchain that builds the test binaries on the host
# Artifacts per kernel in .build/vm/SERIES/: device-tests.xml and scenarios.xml (JUnit),
# probe.json, probe.txt, scenarios.txt, selftests.tsv and selftest-*.log (the kernel's own
# tests), guest.log; one summary line per kernel at the end (also in .build/vm/summary.txt);
# then the board test (Tests/Board/board-test.sh) on the first kernel, artifacts in .build/vm/board/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/common.sh"
log() { echo "vm-test: $*" >&2; }

# The guest took 305 s on one 2-core machine and 620 s on another whose TCG runs at half the
# speed (clock step 1 µs vs 2.5 µs); under load, more: the limit only catches a hang.
vm_timeout=${VM_TIMEOUT:-1800}
vm_check_accel
vm_kernel_list
ensure_host_deps vm
# Kernels and selftests first: a missing one is built (tens of minutes) before anything boots.
for i in "${!kernel_series[@]}"; do
    vm_resolve_kernel "${kernel_series[$i]}" "${kernel_images[$i]}"
    kernel_images[$i]=$kernel
    kernel_selftests[$i]=$("$here/selftests.sh" "${kernel_series[$i]}" | tail -1)
done

log "building the test binaries on the host"
cd "$root"
${SWIFT:-swift} build --build-tests >&2
${SWIFT:-swift} build --product dmabuf-probe >&2
${SWIFT:-swift} build --product dmabuf-pipe >&2
${SWIFT:-swift} build --product dmabuf-bench >&2
bin=$(${SWIFT:-swift} build --show-bin-path)
# The regression gate measures what users run: the release build.
${SWIFT:-swift} build -c release --product dmabuf-bench >&2
release_bin=$(${SWIFT:-swift} build -c release --show-bin-path)
runs="$root/.build/vm"
rm -rf "$runs" && mkdir -p "$runs"

# Boots one kernel and runs the guest; sets `status` (the guest's exit) and `seconds`.
boot_and_run() {
    vm_choose_accel
    log "booting $kernel ($accel) with: $cmdline"
    local start
    start=$(date +%s)
    status=0
    timeout "$vm_timeout" vng "${vng_args[@]}" --exec "$here/guest.sh $bin $out $1 $release_bin" 2>&1 | tee "$out/guest.log" \
        || status=${PIPESTATUS[0]}
    # Once in a CI run the first TCG boot after the KVM check ended at once (vng exit 255 after
    # 6 s, no output at all) and the next kernel's booted fine: a guest that never started its
    # script is booted once more, said so, the first attempt's log kept.
    if [ ! -s "$out/release.txt" ] && [ "$status" != 0 ] && [ "$status" != 124 ]; then
        log "the guest never started (vng exit $status after $(( $(date +%s) - start )) s, log in $out/guest-attempt1.log): booting it once more"
        mv "$out/guest.log" "$out/guest-attempt1.log"
        status=0
        timeout "$vm_timeout" vng "${vng_args[@]}" --exec "$here/guest.sh $bin $out $1 $release_bin" 2>&1 | tee "$out/guest.log" \
            || status=${PIPESTATUS[0]}
    fi
    seconds=$(( $(date +%s) - start ))
    if [ "$status" = 124 ]; then
        log "the VM did not finish within $vm_timeout s (VM_TIMEOUT); the guest's last heartbeat (every 30 s):" \
            "$(cat "$out/heartbeat" 2>/dev/null || echo none)"
    fi
}

overall=0
for i in "${!kernel_series[@]}"; do
series=${kernel_series[$i]} kernel=${kernel_images[$i]}
out="$runs/$series"
mkdir -p "$out"
boot_and_run "${kernel_selftests[$i]}"

# The summary, from the JUnit report the guest wrote (absent when the guest never ran the tests).
verdict=0
python3 - "$out" "$seconds" "$accel" "$series" "$status" <<'EOF' || verdict=1
import json, os, re, sys, xml.etree.ElementTree as ET
out, seconds, accel, series, status = sys.argv[1:6]
ok = True
summary_facts = []  # what the one-line summary says of this kernel
_print = print
def print(text, file=sys.stdout):
    _print(text.replace("vm-test: ", f"vm-test [{series}]: ", 1), file=file)
try:
    suite = ET.parse(f"{out}/device-tests.xml").getroot()
    # Count test cases, not the suite's attributes: swift-testing's "failures" counts issues,
    # and one failing test can record several.
    cases = list(suite.iter("testcase"))
    tests = len(cases)
    failures = sum(1 for case in cases if case.find("failure") is not None or case.find("error") is not None)
    skipped = max(sum(1 for case in cases if case.find("skipped") is not None),
                  sum(int(node.get("skipped", 0)) for node in suite.iter("testsuite")))
    # Each parameterized test runs one case per argument: count them from the console copy.
    counted = 0
    with open(f"{out}/device-tests.txt", errors="replace") as console:
        for line in console:
            ended = re.match(r"\S+ Test (?!case |run ).*? (?:with (\d+) test cases? )?(?:passed|failed|skipped)", line)
            if ended:
                counted += int(ended.group(1) or 1)
    print(f"vm-test: {tests} device tests ({counted} cases) ran inside the VM ({accel}, {seconds} s): "
          f"{tests - failures - skipped} passed, {failures} failed, {skipped} skipped")
    summary_facts.append(f"{tests} device tests ({counted} cases): {failures} failed, {skipped} skipped")
    if tests == 0 or failures or skipped:
        ok = False
        print("vm-test: the VM run must have tests, no failures and no skips", file=sys.stderr)
except (OSError, ET.ParseError) as error:
    print(f"vm-test: no test report from the guest ({error}); see {out}/guest.log", file=sys.stderr)
    ok = False
try:
    cases = list(ET.parse(f"{out}/scenarios.xml").getroot().iter("testcase"))
    failed = [case.get("name") for case in cases if case.find("failure") is not None]
    skipped = [case.get("name") for case in cases if case.find("skipped") is not None]
    tests, failures = len(cases), len(failed)
    print(f"vm-test: {tests} pipeline scenarios ran inside the VM: {tests - failures - len(skipped)} passed"
          + (f", failed: {', '.join(failed)}" if failed else "") + (f", skipped: {', '.join(skipped)}" if skipped else "")
          + f" (see {out}/scenarios.txt)")
    summary_facts.append(f"{tests} scenarios: {failures} failed, {len(skipped)} skipped")
    if tests == 0 or failures or skipped:
        ok = False
except (OSError, ET.ParseError) as error:
    print(f"vm-test: no scenario report from the guest ({error}); see {out}/guest.log", file=sys.stderr)
    ok = False
try:
    facts = dict(line.split("\t", 1) for line in open(f"{out}/interrupted.tsv").read().splitlines())
    cases = list(ET.parse(f"{out}/interrupted.xml").getroot().iter("testcase"))
    report = open(f"{out}/interrupted.txt").read()
    verdict = [case.find("skipped") is not None for case in cases]
    print(f"vm-test: SIGINT in a 300-frame run in the VM: exit {facts['exit']}, JUnit {len(cases)} cases "
          f"({verdict.count(False)} completed, {verdict.count(True)} interrupted), kernel objects before {facts['before']}, "
          f"after {facts['after']}, a run right after: exit {facts['again']} (see {out}/interrupted.txt)")
    if facts["exit"] != "130" or verdict != [False, True] or "interrupted by SIGINT after" not in report \
            or facts["before"] != facts["after"] or facts["again"] != "0":
        ok = False
        print("vm-test: an interrupted run must exit 130 with its partial report and JUnit, leaving nothing behind",
              file=sys.stderr)
except (OSError, ET.ParseError, KeyError, ValueError) as error:
    print(f"vm-test: no report of the interrupted run from the guest ({error}); see {out}/guest.log", file=sys.stderr)
    ok = False
try:
    rows = [line.split("\t") for line in open(f"{out}/probe-device.tsv").read().splitlines()]
    print("vm-test: dmabuf-probe -d in the VM: " + ", ".join(f"-d {name} exit {code}" for name, code in rows)
          + f" (reports in {out}/probe-device-*.txt)")
    if len(rows) != 3 or any(code != "0" for _, code in rows):
        ok = False
        print("vm-test: dmabuf-probe -d must probe a node name, a number and a driver (exit 0)", file=sys.stderr)
except (OSError, ValueError) as error:
    print(f"vm-test: no dmabuf-probe -d report from the guest ({error})", file=sys.stderr)
    ok = False
try:
    rows = [line.split("\t") for line in open(f"{out}/selftests.tsv").read().splitlines()]
    source = open(f"{out}/selftests-source.txt").read().strip()
    hugetlbfs = "hugetlbfs" in open(f"{out}/filesystems.txt").read()
    def verdict(name, code):
        # KTAP results in the log; exit 4 is kselftest's skip.
        log = open(f"{out}/selftest-{name}.log", errors="replace").read()
        passed = len(re.findall(r"^ok \d+", log, re.M))
        failed = len(re.findall(r"^not ok \d+(?! .*# SKIP)", log, re.M))
        if code == "0":
            return "pass", True
        # udmabuf's selftest (6.12) ends with a hugetlb memfd case; without hugetlbfs in the
        # kernel it exits as a skip after its other cases passed. Accepted only exactly so.
        if code == "4" and name == "udmabuf" and not failed and "[skip,no-memfd]" in log and not hugetlbfs:
            return f"pass ({passed} cases; the hugetlb case skipped: this kernel has no hugetlbfs)", True
        return ("skip" if code == "4" else f"FAIL (exit {code})"), False
    verdicts = [(name, *verdict(name, code)) for name, code, _ in rows]
    print(f"vm-test: the kernel's own selftests ({source}) in the VM: "
          + ", ".join(f"{name} {text}" for name, text, _ in verdicts) + f" (logs in {out}/selftest-*.log)")
    summary_facts.append("selftests " + ", ".join(f"{name} {'pass' if good else 'FAIL'}" for name, _, good in verdicts))
    if len(rows) != 3 or not all(good for _, _, good in verdicts):
        ok = False
        print("vm-test: every kernel selftest must pass (a skip fails the rig too)", file=sys.stderr)
except (OSError, ValueError) as error:
    print(f"vm-test: no selftest report from the guest ({error})", file=sys.stderr)
    ok = False
try:
    probe = json.load(open(f"{out}/probe.json"))
    heaps = {h["name"]: h["status"] for h in probe["heaps"]["items"]}
    drm = {d["driver"]: d["status"] for d in probe["drm"]["items"]}
    video = {v["name"]: v["status"] for v in probe["v4l2"]["items"]}
    wanted_video = ["vivid-000-vid-cap", "vivid-000-vid-out", "vivid-001-vid-cap", "vivid-001-vid-out",
                    "vivid-002-vid-cap", "vivid-002-vid-out", "vim2m"]
    print(f"vm-test: dmabuf-probe in the VM: heaps {heaps}, udmabuf {probe['udmabuf']['status']}, "
          f"sync_file {probe['syncFile']['status']}, DRM {drm}, V4L2 {len(video)} nodes "
          f"({', '.join(f'{n} {video.get(n)}' for n in wanted_video)}) (saved as {out}/probe.json)")
    cells = probe.get("matrix", {}).get("cells", [])
    counts = {status: sum(1 for c in cells if c["status"] == status) for status in ("ok", "unsupported", "skipped", "failed")}
    needs = [c.get("requirement", "no requirement found") for c in cells if c["status"] == "unsupported"]
    requirements = ", ".join(f"{needs.count(n)} {n}" for n in sorted(set(needs))) or "none"
    print(f"vm-test: sharing matrix in the VM: {len(probe.get('matrix', {}).get('exporters', []))} exporters × "
          f"{len(probe.get('matrix', {}).get('importers', []))} importers: {counts['ok']} ok, {counts['unsupported']} limit "
          f"({requirements}), {counts['skipped']} not applicable, {counts['failed']} failed (table in {out}/probe.txt)")
    if not cells:
        ok = False
        print("vm-test: the probe must include the sharing matrix", file=sys.stderr)
    if set(heaps) != {"system", "reserved"} or set(heaps.values()) != {"ok"} \
            or probe["udmabuf"]["status"] != "ok" or probe["syncFile"]["status"] != "ok" \
            or drm != {"vkms": "ok", "vgem": "ok"} or any(video.get(n) != "ok" for n in wanted_video):
        ok = False
        print("vm-test: the probe must report both heaps, udmabuf, sync_file, vkms, vgem, vivid and vim2m working",
              file=sys.stderr)
except (OSError, ValueError, KeyError) as error:
    print(f"vm-test: no probe report from the guest ({error})", file=sys.stderr)
    ok = False
try:
    # The regression gate, and the same gate with the Swift side slowed down 100%: it must pass
    # the one and fail the other on every loop, by the measured ratio (not a missing loop).
    facts = dict(line.split("\t", 1) for line in open(f"{out}/gate.tsv").read().splitlines())
    lines = lambda name: [l.strip() for l in open(f"{out}/{name}.err").read().splitlines() if l.startswith("  ")]
    gate, injected = lines("gate"), lines("gate-injected")
    failed = [l for l in gate if not l.startswith("ok")]
    caught = [l for l in injected if l.startswith("FAIL") and "not measured" not in l]
    print(f"vm-test: regression gate in the VM: exit {facts['gate']}, {len(gate) - len(failed)} of {len(gate)} loops within "
          f"their bounds; with a 100% slowdown injected: exit {facts['injected']}, {len(caught)} of {len(injected)} caught "
          f"(see {out}/gate.err, {out}/gate-injected.err)")
    for l in failed:
        print(f"vm-test:   {l}", file=sys.stderr)
    if os.path.exists(f"{out}/gate-first.err"):
        first = [l for l in lines("gate-first") if not l.startswith("ok")]
        print(f"vm-test: the gate's first pass had {len(first)} loop(s) past their bounds, measured again: "
              + "; ".join(first), file=sys.stderr)
    if os.path.exists(f"{out}/gate-injected-first.err"):
        missed = [l for l in lines("gate-injected-first") if l.startswith("ok")]
        print(f"vm-test: the injected slowdown's first pass missed {len(missed)} loop(s), measured again: "
              + "; ".join(missed), file=sys.stderr)
    summary_facts.append(f"gate {len(gate) - len(failed)}/{len(gate)} within bounds, injected slowdown caught {len(caught)}/{len(injected)}")
    # Enforced: every loop within bound + noise (a loop past it was measured once more), and
    # every loop caught once the Swift side is slowed down 100%, by its ratio.
    if facts["gate"] != "0" or failed or not gate:
        print("vm-test: the regression gate failed: a loop passed its recorded bound by more than its noise "
              "(Tests/VM/bench-bounds.txt)", file=sys.stderr)
        ok = False
    if facts["injected"] != "1" or len(caught) != len(injected):
        print(f"vm-test: the regression gate missed an injected 100% slowdown on {len(injected) - len(caught)} loop(s): "
              "its bounds are too loose to catch a regression (see gate-injected.err)", file=sys.stderr)
        ok = False
except (OSError, ValueError, KeyError) as error:
    print(f"vm-test: no regression gate report from the guest ({error})", file=sys.stderr)
    ok = False
try:
    release = open(f"{out}/release.txt").read().strip()
except OSError:
    release = "did not boot"
line = (f"vm-test: {series} (Linux {release}, {accel}, {seconds} s): {'PASSED' if ok and status == '0' else 'FAILED'}: "
        + "; ".join(summary_facts) + ("" if status == "0" else f"; guest exit {status}"))
with open(f"{out}/../summary.txt", "a") as summary:
    summary.write(line + "\n")
sys.exit(0 if ok else 1)
EOF
{ [ "$status" != 0 ] || [ "$verdict" != 0 ]; } && overall=1
done

# The `make dist` tarball on a minimal Debian root without Swift, as on a board, on the first
# kernel: the LAVA runner installs it and runs the probe and a scenario with KTAP.
VM_ACCEL=$accel SWIFT=${SWIFT:-swift} "$root/Tests/Board/board-test.sh" "${kernel_images[0]}" "$runs/board" \
    | tee -a "$runs/summary.txt" || overall=1

echo
cat "$runs/summary.txt"
exit "$overall"
