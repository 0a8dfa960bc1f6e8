#!/usr/bin/env bash
# Installs rbv for the current user: the GStreamer plugin where GStreamer finds
# it without any environment variable (its per-user plugin directory,
# ${XDG_DATA_HOME:-~/.local/share}/gstreamer-1.0/plugins), and the `rbv`
# command in ${XDG_BIN_HOME:-~/.local/bin}. The ONNX Runtime library and the
# models stay in the rbv cache (${XDG_CACHE_HOME:-~/.cache}/rbv), which both
# read from any working directory.
#
#   setup/install.sh               set up (packages, runtime, models), build, install
#   setup/install.sh --uninstall   remove the installed plugin and command (the cache stays)
#   setup/install.sh --no-setup    install only (set-up already done, built)
#
# RBV_PLUGIN_LIB=/path/libgstrbv.so and RBV_BIN=/path/rbv install those files
# instead of target/release's.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dest=${XDG_DATA_HOME:-$HOME/.local/share}/gstreamer-1.0/plugins
bindir=${XDG_BIN_HOME:-$HOME/.local/bin}
mode=${1:-install}

case "$mode" in
  --uninstall)
    rm -f "$dest/libgstrbv.so" "$bindir/rbv"
    echo "rbv: removed $dest/libgstrbv.so and $bindir/rbv"
    exit 0 ;;
  install)
    "$repo/setup/setup.sh"
    (cd "$repo" && cargo build --release -p gst-plugin-rbv -p rbv-cli) ;;
  --no-setup) ;;
  *) echo "usage: setup/install.sh [--uninstall | --no-setup]" >&2; exit 2 ;;
esac

lib=${RBV_PLUGIN_LIB:-$repo/target/release/libgstrbv.so}
bin=${RBV_BIN:-$repo/target/release/rbv}
for f in "$lib" "$bin"; do
  [ -f "$f" ] || { echo "rbv: $f not found: build first (cargo build --release -p gst-plugin-rbv -p rbv-cli)" >&2; exit 1; }
done
mkdir -p "$dest" "$bindir"
install -m 0644 "$lib" "$dest/libgstrbv.so"
install -m 0755 "$bin" "$bindir/rbv"
echo "rbv: installed $dest/libgstrbv.so and $bindir/rbv"
# Check as a user would: no GST_PLUGIN_PATH.
if env -u GST_PLUGIN_PATH gst-inspect-1.0 rbvremove >/dev/null 2>&1; then
  echo "rbv: gst-inspect-1.0 rbvremove finds it"
else
  echo "rbv: installed, but gst-inspect-1.0 rbvremove does not find it" >&2
  exit 1
fi
case ":$PATH:" in
  *":$bindir:"*) ;;
  *) echo "rbv: $bindir is not on PATH: add it to run rbv by name" ;;
esac
