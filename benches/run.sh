#!/usr/bin/env bash
# The performance benchmark in one command: set-up (idempotent), then
# `cargo bench -p gst-plugin-rbv --bench fps` (table on stdout, target/bench/fps.json), then the
# plot the README shows (docs/bench/fps.png, needs python3-matplotlib).
set -euo pipefail
cd "$(dirname "$0")/.."
setup/setup.sh
if ! /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y python3-matplotlib
fi
cargo bench -p gst-plugin-rbv --bench fps
/usr/bin/python3 benches/plot.py
