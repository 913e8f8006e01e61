#!/usr/bin/env bash
# Installs DmaBufKit for a board or a farm: one stripped binary with the Swift runtime linked in
# (bin/dmabuf; dmabuf-probe, dmabuf-pipe and dmabuf-bench are links to it; bin/dmabuf-bench-floor,
# the C floor of the bench), man pages, bash/zsh/
# fish completions, the scenarios and the board README, under PREFIX.
#   install.sh PREFIX           build (release, static Swift runtime) and install
#   install.sh --dist           the same into a staging folder, then .build/dist/dmabufkit-VERSION-ARCH.tar.xz
# The build lives in .build/dist-build, apart from the debug and bench builds.
set -euo pipefail
cd "$(dirname "$0")/../.."
SWIFT=${SWIFT:-swift}
tools=(dmabuf-probe dmabuf-pipe dmabuf-bench)

build() {
    "$SWIFT" build -c release --static-swift-stdlib --scratch-path .build/dist-build --product dmabuf >&2
    # The C floor dmabuf-bench --pipelines costs dmabuf-pipe against.
    "$SWIFT" build -c release --scratch-path .build/dist-build --product dmabuf-bench-floor >&2
    # The man page generator of swift-argument-parser, built once into the debug build.
    "$SWIFT" build --product generate-manual >&2
}

release_binary() { echo "$("$SWIFT" build -c release --scratch-path .build/dist-build --show-bin-path)/dmabuf"; }

# install_into PREFIX: the set, from the binaries build() made.
install_into() {
    local prefix=$1 manual
    manual=$("$SWIFT" build --show-bin-path)/generate-manual
    mkdir -p "$prefix/bin" "$prefix/share/man/man1" "$prefix/share/bash-completion/completions" \
        "$prefix/share/zsh/site-functions" "$prefix/share/fish/vendor_completions.d" \
        "$prefix/share/dmabufkit/scenarios" "$prefix/share/doc/dmabufkit"
    install -m 755 -s "$(release_binary)" "$prefix/bin/dmabuf"
    install -m 755 -s "$(dirname "$(release_binary)")/dmabuf-bench-floor" "$prefix/bin/dmabuf-bench-floor"
    for tool in "${tools[@]}"; do
        ln -sf dmabuf "$prefix/bin/$tool"
        "$manual" "$prefix/bin/$tool" \
            --date "$(date -u -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)" +%F)" \
            --output-directory "$prefix/share/man/man1"
        # mdoc separates paragraphs with .Pp; the generator leaves the help's empty lines.
        sed -i 's/^$/.Pp/' "$prefix/share/man/man1/$tool.1"
        "$prefix/bin/$tool" --generate-completion-script bash >"$prefix/share/bash-completion/completions/$tool"
        "$prefix/bin/$tool" --generate-completion-script zsh >"$prefix/share/zsh/site-functions/_$tool"
        "$prefix/bin/$tool" --generate-completion-script fish >"$prefix/share/fish/vendor_completions.d/$tool.fish"
    done
    install -m 644 Tests/Scenarios/*.yaml "$prefix/share/dmabufkit/scenarios/"
    install -m 644 Tests/Board/README.board.md "$prefix/share/doc/dmabufkit/README.md"
    mkdir -p "$prefix/share/dmabufkit/lava"
    install -m 644 Tests/Board/lava/*.yaml "$prefix/share/dmabufkit/lava/"
    install -m 755 Tests/Board/lava/dmabufkit.sh "$prefix/share/dmabufkit/lava/"
}

build
if [ "${1:-}" = --dist ]; then
    name=dmabufkit-$("$(release_binary)" probe --version)-$(uname -m)
    rm -rf ".build/dist/$name" ".build/dist/$name.tar.xz"
    install_into ".build/dist/$name"
    # Reproducible: fixed owner and order, the commit's time.
    tar -C .build/dist --owner=0 --group=0 --numeric-owner --sort=name \
        --mtime="@$(git log -1 --format=%ct 2>/dev/null || date +%s)" -cf - "$name" | xz -9e -T1 >".build/dist/$name.tar.xz"
    echo "$PWD/.build/dist/$name.tar.xz: $(du -b ".build/dist/$name.tar.xz" | cut -f1) bytes (binary $(du -b ".build/dist/$name/bin/dmabuf" | cut -f1) bytes, stripped)"
else
    install_into "${1:?usage: install.sh PREFIX | --dist}"
    echo "installed into $1: bin/dmabuf and links ${tools[*]}, man pages, completions, scenarios"
fi
