# DmaBufKit — set up, probe and test on Debian 12 with the Swift toolchain on PATH.
SWIFT ?= swift
# Debian packages the build needs: the system-library modules link libdrm and libv4l2.
DEB_PACKAGES := pkg-config libdrm-dev libv4l-dev libpng-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PROBE_ARGS ?=
BENCH_ARGS ?=
# The VM rig: the kernel series to build (make vm-kernel) and to test on (make vm-test, each
# entry SERIES or SERIES=/path/to/bzImage); VM_KERNEL, one ready bzImage instead (the 6.1
# series); KVM or TCG (detected when empty).
KERNEL ?= 6.1
VM_KERNELS ?= 6.1 6.12
VM_KERNEL ?=
VM_ACCEL ?=

.PHONY: all deps probe test unit-test vm-kernel vm-test bench bench-bounds dist install cross-check lava-check format format-check clean

all: probe

# Installs the Debian packages that are missing (and only those).
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# Probes this machine's kernel. Exit 2 (no heaps and no udmabuf here) is a finding, not a
# failure of the command; 1 (a path failed) and 3 (no permission) fail it.
probe: deps
	$(SWIFT) build --product dmabuf-probe
	@.build/debug/dmabuf-probe $(PROBE_ARGS); status=$$?; [ $$status -eq 0 ] || [ $$status -eq 2 ] || exit $$status

# Everything: the unit tests on the simulated kernel, then the device tests in the VM.
test: unit-test vm-test

# The test suite on this machine's kernel: device tests skip here with their reason
# unless the machine has the devices (a board, or a kernel with heaps and udmabuf). The KTAP
# tests read the tools' output with the kernel's own parser, taken from linux-source-6.1.
unit-test: deps
	DMABUFKIT_KTAP_PARSER=$$(Tests/Board/ktap-parser.sh 6.1 | tail -1) $(SWIFT) test

# Builds the test kernel of series KERNEL (6.1 or 6.12) from Debian's linux-source-$(KERNEL) and
# Tests/VM/kernel.config, cached under ~/.cache/dmabufkit keyed by their hash (a second run is
# instant).
vm-kernel:
	Tests/VM/vm-kernel.sh "$(KERNEL)"

# Boots each kernel of VM_KERNELS with virtme-ng and runs the device tests, dmabuf-probe, the
# scenarios and the kernel's selftests in it; artifacts in .build/vm/SERIES/, a line per kernel.
vm-test: deps
	VM_KERNELS="$(VM_KERNELS)" VM_KERNEL="$(VM_KERNEL)" VM_ACCEL="$(VM_ACCEL)" SWIFT="$(SWIFT)" Tests/VM/vm-test.sh

# Benchmarks in the VM (release build): ioctl loops vs a C reference, pipeline CPU per frame
# vs GStreamer; then the Swift side alone on the simulated kernel. Results in .build/bench/.
bench: deps
	VM_KERNEL="$(VM_KERNEL)" VM_ACCEL="$(VM_ACCEL)" SWIFT="$(SWIFT)" BENCH_ARGS="$(BENCH_ARGS)" Tests/VM/vm-bench.sh

# Records the regression gate's bounds (Tests/VM/bench-bounds.txt) from RUNS (5) runs of the
# gate's loops in the VM on each kernel: the mean Swift/C median and the range as noise.
bench-bounds: deps
	VM_KERNELS="$(VM_KERNELS)" VM_KERNEL="$(VM_KERNEL)" VM_ACCEL="$(VM_ACCEL)" SWIFT="$(SWIFT)" Tests/VM/bench-bounds.sh

# For boards: the three tools as one stripped binary with the Swift runtime linked in, with man
# pages, completions, scenarios and the board README, as .build/dist/dmabufkit-VERSION-ARCH.tar.xz.
dist: deps
	SWIFT="$(SWIFT)" Tests/Board/install.sh --dist

# Installs the same set under PREFIX (bin/, share/man/man1, share/…/completions, share/dmabufkit).
PREFIX ?= /usr/local
install: deps
	SWIFT="$(SWIFT)" Tests/Board/install.sh "$(PREFIX)"

# Compiles the C shim and the C benchmark reference for arm64 (aarch64) with Debian's cross gcc,
# warnings as errors: every _Static_assert on a mirrored kernel struct must hold there too.
CROSS_CC ?= aarch64-linux-gnu-gcc
CROSS_CFLAGS := -std=gnu11 -O2 -Wall -Wextra -Werror
cross-check:
	@command -v $(CROSS_CC) >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq gcc-aarch64-linux-gnu libdrm-dev; }
	@for source in Shims/CDmaBuf/*.c; do \
	  $(CROSS_CC) $(CROSS_CFLAGS) -IShims/CDmaBuf/include -c $$source -o /dev/null || exit 1; \
	done
	@for source in Sources/CBenchReference/*.c Sources/dmabuf-bench-floor/*.c; do \
	  $(CROSS_CC) $(CROSS_CFLAGS) -ISources/CBenchReference/include -idirafter /usr/include/libdrm \
	    -c $$source -o /dev/null || exit 1; \
	done
	@echo "cross-check: the C shim ($$(ls Shims/CDmaBuf/*.c | wc -l) files, $$(cat Shims/CDmaBuf/*.c | grep -c _Static_assert) struct and ioctl asserts) and the C reference compile for $$($(CROSS_CC) -dumpmachine) ($$($(CROSS_CC) -dumpversion))"

# Validates the LAVA test definition and example job with LAVA's own schemas (Debian's
# lava-common) and runs the definition's runner against the simulated kernel's KTAP.
lava-check: deps
	SWIFT="$(SWIFT)" Tests/Board/lava-check.sh

# Formats the Swift sources with the toolchain's swift-format (.ci/swift-format.json).
format:
	$(SWIFT) format --configuration .ci/swift-format.json --in-place --recursive --parallel Package.swift Sources Tests

# Formats in place, then fails if that changed a tracked file (CI runs it on its fresh clone).
format-check:
	@$(MAKE) -s format && git diff --exit-code --stat -- Package.swift Sources Tests || \
	  { echo "format-check: the files above are not formatted; run make format"; exit 1; }

clean:
	rm -rf .build
