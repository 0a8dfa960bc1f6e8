#!/usr/bin/env bash
# The peer benchmark in one command: rbvremove model=human against MediaPipe's
# Python selfie segmentation on the same frames (benches/peer.py says how).
# Creates MediaPipe's own venv on first use (setup/fetch.py --peer: pinned
# wheels, about 140 MB; the normal set-up does not), builds the plugin unless
# RBV_PLUGIN_DIR names a directory holding libgstrbv.so, then runs the bench
# with a Python that has PyGObject (Debian's python3-gi). Table on stdout,
# figures in target/bench/peer.json. Extra arguments go to benches/peer.py
# (--rounds N, --sizes 720p,1080p).
set -euo pipefail
cd "$(dirname "$0")/.."
peer_python=$(python3 setup/fetch.py --peer | tail -n 1)
if [ -z "${RBV_PLUGIN_DIR:-}" ]; then
  cargo build --release -p gst-plugin-rbv
  export RBV_PLUGIN_DIR="$PWD/target/release"
fi
py=python3
python3 -c "import gi" 2>/dev/null || py=/usr/bin/python3
exec "$py" benches/peer.py --peer-python "$peer_python" "$@"
