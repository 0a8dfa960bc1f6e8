#!/usr/bin/env bash
# Installs the rbv GStreamer plugin for the current user, where GStreamer finds
# it without any environment variable (its per-user plugin directory,
# ${XDG_DATA_HOME:-~/.local/share}/gstreamer-1.0/plugins). The ONNX Runtime
# library and the models stay in the rbv cache (${XDG_CACHE_HOME:-~/.cache}/rbv),
# which the plugin reads from any working directory.
#
#   setup/install.sh               set up (packages, runtime, models), build, install
#   setup/install.sh --uninstall   remove the installed plugin (the cache stays)
#   setup/install.sh --no-setup    install only (set-up already done, plugin built)
#
# RBV_PLUGIN_LIB=/path/libgstrbv.so installs that file instead of target/release's.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dest=${XDG_DATA_HOME:-$HOME/.local/share}/gstreamer-1.0/plugins
mode=${1:-install}

case "$mode" in
  --uninstall)
    rm -f "$dest/libgstrbv.so"
    echo "rbv: removed $dest/libgstrbv.so"
    exit 0 ;;
  install)
    "$repo/setup/setup.sh"
    (cd "$repo" && cargo build --release) ;;
  --no-setup) ;;
  *) echo "usage: setup/install.sh [--uninstall | --no-setup]" >&2; exit 2 ;;
esac

lib=${RBV_PLUGIN_LIB:-$repo/target/release/libgstrbv.so}
[ -f "$lib" ] || { echo "rbv: $lib not found: build first (cargo build --release)" >&2; exit 1; }
mkdir -p "$dest"
install -m 0644 "$lib" "$dest/libgstrbv.so"
echo "rbv: installed $dest/libgstrbv.so"
# Check as a user would: no GST_PLUGIN_PATH.
if env -u GST_PLUGIN_PATH gst-inspect-1.0 rbvremove >/dev/null 2>&1; then
  echo "rbv: gst-inspect-1.0 rbvremove finds it"
else
  echo "rbv: installed, but gst-inspect-1.0 rbvremove does not find it" >&2
  exit 1
fi
