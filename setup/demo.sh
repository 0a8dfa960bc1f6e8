#!/usr/bin/env bash
# The main job: set up, build, and cut the people out of the demo clip.
# Writes out/demo.mkv (FFV1 with alpha) and out/preview.png (frames over a checkerboard).
set -euo pipefail
cd "$(dirname "$0")/.."
setup/setup.sh
cargo build --release -p gst-plugin-rbv
cache=${RBV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rbv}
mkdir -p out
pipelines/file-to-alpha-mkv.sh "$cache/data/demo_input.webm" out/demo.mkv model=human
pipelines/preview.sh out/demo.mkv out/preview.png
echo "wrote out/demo.mkv and out/preview.png"
