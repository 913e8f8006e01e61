# DmaBufKit — set up, probe and test on Debian 12 with the Swift toolchain on PATH.
SWIFT ?= swift
# Debian packages the build needs: the system-library modules link libdrm and libv4l2.
DEB_PACKAGES := pkg-config libdrm-dev libv4l-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PROBE_ARGS ?=

.PHONY: all deps probe test clean

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

# The whole test suite on the simulated kernel; device tests skip here with their reason.
test: deps
	$(SWIFT) test

clean:
	rm -rf .build
