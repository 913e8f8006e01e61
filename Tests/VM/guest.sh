#!/usr/bin/env bash
# Runs inside the VM (as root, over a read-only view of the host's files): checks that the
# rig has the devices it promises, saves dmabuf-probe's report, runs the device tests.
#   guest.sh BIN_DIR OUT_DIR SELFTESTS_DIR RELEASE_BIN_DIR
set -u
bin=$1 out=$2 selftests=$3 release_bin=$4
uname -r >"$out/release.txt"
cat /proc/filesystems >"$out/filesystems.txt"
echo "guest: Linux $(uname -r); cmdline: $(cat /proc/cmdline | tr ' ' '\n' | grep -E '^(vkms|vivid|udmabuf)\.|^(tsc|cma)=' | tr '\n' ' ')"
echo "guest: CMA $(awk '/^Cma/ {printf "%s %s kB ", $1, $2}' /proc/meminfo)"
echo "guest: clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug

# The rig's inventory: DRM devices by driver name, V4L2 nodes by name (numbers are not stable).
missing=()
for node in /dev/dma_heap/system /dev/dma_heap/reserved /dev/udmabuf /sys/kernel/debug/sync/sw_sync \
    /sys/kernel/debug/dma_buf/bufinfo; do
    [ -e "$node" ] || missing+=("$node")
done
drm=""
for name in /sys/kernel/debug/dri/[0-9]*/name; do   # "vkms unique=vkms"; minor < 64 is a card node
    minor=$(basename "$(dirname "$name")")
    [ "$minor" -lt 64 ] && drm="$drm $(cut -d' ' -f1 "$name")=/dev/dri/card$minor"
done
for driver in vkms vgem; do case "$drm" in *" $driver="*) ;; *) missing+=("DRM driver $driver") ;; esac; done
ls /sys/class/drm | grep -q -- '-Writeback-' || missing+=("vkms writeback connector (vkms.enable_writeback=1)")
v4l2=""
for node in /sys/class/video4linux/video*; do
    [ -e "$node/name" ] && v4l2="$v4l2 $(cat "$node/name")=/dev/$(basename "$node")"
done
for name in vivid-000-vid-cap vivid-000-vid-out vivid-001-vid-cap vivid-001-vid-out vivid-002-vid-cap vivid-002-vid-out \
    vivid-003-vid-cap vivid-003-vid-out vivid-004-vid-cap vivid-004-vid-out vivid-005-vid-cap vivid-005-vid-out vim2m; do
    case "$v4l2" in *" $name="*) ;; *) missing+=("V4L2 node $name") ;; esac
done
case "$(cat /sys/module/vivid/parameters/multiplanar 2>/dev/null)" in 1,2,1|1,2,1,*) ;; *) missing+=("vivid.multiplanar=1,2,1") ;; esac
case "$(cat /sys/module/vivid/parameters/allocators 2>/dev/null)" in 0,0,1|0,0,1,*) ;; *) missing+=("vivid.allocators=0,0,1") ;; esac
echo "guest: DRM:$drm"
echo "guest: V4L2:$v4l2"
if [ ${#missing[@]} -gt 0 ]; then
    printf 'guest: the test kernel lacks: %s\n' "${missing[@]}" >&2
    exit 3
fi

# The kernel's own selftests for the same interfaces, beside the project's (exit 4 is a skip).
cp "$selftests/SOURCE" "$out/selftests-source.txt"
: >"$out/selftests.tsv"
for test in dmabuf-heap udmabuf sync_test; do
    started=$(date +%s)
    "$selftests/$test" >"$out/selftest-$test.log" 2>&1
    status=$?
    printf '%s\t%s\t%s\n' "$test" "$status" "$(( $(date +%s) - started ))" >>"$out/selftests.tsv"
    echo "guest: kernel selftest $test: exit $status ($(tail -1 "$out/selftest-$test.log"))"
done

# The clock every CPU-time figure rests on (the benchmark device test refuses an unsound one).
"$bin/dmabuf-bench" --check-clock | sed 's/^/guest: /'

# The regression gate (a short form of the loops, release build, against the bounds recorded by
# `make bench-bounds`), then the same with the Swift side slowed down 100%, which it must catch.
gate=$(cd "$(dirname "$0")" && pwd)/bench-bounds.txt
# A loop past its bound is measured once more: a regression fails both times, while a median
# pushed up by one busy stretch of the host (a TCG guest shares its CPUs) rarely does twice.
"$release_bin/dmabuf-bench" --no-layers --rounds-scale 0.3 --runs 5 --gate "$gate" >"$out/gate.txt" 2>"$out/gate.err"
gate_status=$?
if [ "$gate_status" != 0 ]; then
    mv "$out/gate.err" "$out/gate-first.err"
    "$release_bin/dmabuf-bench" --no-layers --rounds-scale 0.3 --runs 5 --gate "$gate" >"$out/gate.txt" 2>"$out/gate.err"
    gate_status=$?
fi
injected_gate() {
    "$release_bin/dmabuf-bench" --no-layers --rounds-scale 0.3 --runs 5 --gate "$gate" --inject-slowdown 100 \
        >"$out/gate-injected.txt" 2>"$out/gate-injected.err"
}
injected_gate
injected_status=$?
# Likewise, when a busy stretch hid a slowed loop, all are measured once more: each must be caught.
if grep -q '^  ok ' "$out/gate-injected.err"; then
    mv "$out/gate-injected.err" "$out/gate-injected-first.err"
    injected_gate
    injected_status=$?
fi
printf 'gate\t%s\ninjected\t%s\n' "$gate_status" "$injected_status" >"$out/gate.tsv"
echo "guest: regression gate exit $gate_status; with a slowdown injected exit $(sed -n 's/^injected\t//p' "$out/gate.tsv")"

# Runs a command with stdout to FILE (stderr to FILE.err) for at most SECONDS (exit 124 after),
# so that a hang cannot eat the VM's whole time budget. A hang is a finding:
# where each thread waits in the kernel (wchan, stack where readable) and the kernel log's tail
# go to FILE.diag, and the run goes on to the tests.
bounded() {
    local seconds=$1 file=$2 pid deadline
    shift 2
    deadline=$(( $(date +%s) + seconds ))   # wall time: a guest sleep can stretch under TCG
    "$@" >"$file" 2>"$file.err" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            {
                echo "$* did not finish within $seconds s; its threads:"
                for task in /proc/"$pid"/task/*; do
                    echo "thread ${task##*/}: $(tr '\0' ' ' <"$task/comm") state $(awk '/^State/ {print $2}' "$task/status") wchan $(cat "$task/wchan" 2>/dev/null)"
                    cat "$task/stack" 2>/dev/null
                done
                echo "tasks waiting uninterruptibly:"
                ps -eo pid,stat,wchan:32,comm | awk '$2 ~ /D/'
                echo "kernel log (tail):"
                dmesg | tail -40
            } >"$file.diag" 2>&1
            echo "guest: HANG: $* did not finish within $seconds s (threads and kernel log in $file.diag)"
            kill -9 "$pid"
            # A task blocked in the kernel dies only when it leaves it: do not wait on it forever.
            for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
            return 124
        fi
        sleep 1
    done
    wait "$pid"
}

# A heartbeat the host reads if the VM never finishes: whether the guest's user space still ran
# (a stuck task) or the whole guest stopped (a kernel livelock), and what was running.
(
    while sleep 30; do
        printf '%s load %s running: %s\n' "$(date +%T)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
            "$(ps -eo comm,args | grep -E '^(dmabuf-|DmaBufKit)' | cut -c1-160 | tr '\n' ';')" >"$out/heartbeat"
    done
) </dev/null >/dev/null 2>&1 &
heartbeat=$!
trap 'kill "$heartbeat" 2>/dev/null' EXIT   # else the VM waits for it

bounded 600 "$out/probe.json" "$bin/dmabuf-probe" --json --matrix
probe=$?
bounded 600 "$out/probe.txt" "$bin/dmabuf-probe" --matrix
echo "guest: dmabuf-probe exit $probe (report in $out/probe.json)"

# One device at a time, as v4l2-ctl -d and modetest -M take it: a node name, a number, a driver.
: >"$out/probe-device.tsv"
for device in vivid-000-vid-cap 0 vkms; do
    bounded 300 "$out/probe-device-$device.txt" "$bin/dmabuf-probe" -d "$device" --matrix
    printf '%s\t%s\n' "$device" "$?" >>"$out/probe-device.tsv"
done
echo "guest: dmabuf-probe -d (device, exit): $(tr '\t\n' '= ' <"$out/probe-device.tsv")"

# The console copy counts the cases of parameterized tests (the JUnit file has one entry per test).
DMABUFKIT_REQUIRE_DEVICES=1 "$bin/DmaBufKitPackageTests.xctest" --testing-library swift-testing \
    --filter DeviceTests --xunit-output "$out/device-tests.xml" 2>&1 | tee "$out/device-tests.txt"
tests=${PIPESTATUS[0]}

# The scenario suite, as a user runs it: vivid → vkms pipelines verified through writeback.
scenarios=$(cd "$(dirname "$0")/../Scenarios" && pwd)
"$bin/dmabuf-pipe" run "$scenarios"/*.yaml --junit "$out/scenarios.xml" | tee "$out/scenarios.txt"
pipe=${PIPESTATUS[0]}
echo "guest: dmabuf-pipe exit $pipe (report in $out/scenarios.txt)"

# Ctrl-C in the middle of a 300-frame run, as a user would press it: the first scenario
# completes, the second is stopped at a frame; expected: exit 130, the partial report, JUnit with
# the completed case and the interrupted one skipped, and nothing of the run left in the kernel
# (dma-bufs in bufinfo, framebuffers) or streaming (a 2-frame run right after works).
count_objects() {
    local bufs fbs
    bufs=$(sed -n 's/^Total \([0-9]*\) objects.*/\1/p' /sys/kernel/debug/dma_buf/bufinfo 2>/dev/null)
    fbs=$(cat /sys/kernel/debug/dri/*/framebuffer 2>/dev/null | grep -c '^framebuffer\[')
    echo "$bufs dma-bufs, $fbs framebuffers"
}
before=$(count_objects)
"$bin/dmabuf-pipe" run "$scenarios/copy.yaml" "$scenarios/export.yaml" --junit "$out/interrupted.xml" >"$out/interrupted.txt" 2>&1 &
victim=$!
for _ in $(seq 600); do grep -q '^ok   copy' "$out/interrupted.txt" && break; sleep 0.2; done
sleep 5
kill -INT "$victim"
wait "$victim"
interrupted=$?
after=$(count_objects)
"$bin/dmabuf-pipe" run --frames 2 --fps 10 >>"$out/interrupted.txt" 2>&1
again=$?
printf 'exit\t%s\nbefore\t%s\nafter\t%s\nagain\t%s\n' "$interrupted" "$before" "$after" "$again" >"$out/interrupted.tsv"
echo "guest: SIGINT mid-run: exit $interrupted; kernel objects before: $before, after: $after; a run right after: exit $again"

[ "$tests" != 0 ] && exit "$tests"
[ "$pipe" != 0 ] && exit "$pipe"
exit "$probe"
