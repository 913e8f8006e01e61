#!/bin/sh
# Runs inside the VM on the minimal Debian root (no Swift): the LAVA runner installs the
# `make dist` tarball and runs dmabuf-probe and a scenario with --ktap, as on a board.
#   board-guest.sh RUN_DIR   (RUN_DIR holds the tarball and lava/; results are written there)
run=$1
echo "swift libraries in this root: $(find / -xdev -name 'libswift*' 2>/dev/null | wc -l)" >"$run/root.txt"
echo "debian $(cat /etc/debian_version), kernel $(uname -r)" >>"$run/root.txt"
sh "$run/lava/dmabufkit.sh" -t "$run/dmabufkit.tar.xz" -p "--matrix" -s "export.yaml" -o "$run/output" \
    >"$run/lava.txt" 2>&1
echo "$?" >"$run/lava.status"
ldd "$run"/output/dmabufkit-*/bin/dmabuf >"$run/ldd.txt" 2>&1
