#!/usr/bin/env bash
# rbv set-up for a fresh Debian 12 machine. Idempotent; everything downloaded is
# pinned by version and sha256 and cached in $RBV_CACHE_DIR
# (default: ${XDG_CACHE_HOME:-~/.cache}/rbv).
#
#   setup/setup.sh            system packages + ONNX Runtime + models + test data
#   setup/setup.sh --no-apt   skip the system package step
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

APT_PACKAGES=(
  pkg-config
  libgstreamer1.0-dev
  libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools
  # gst-discoverer-1.0, for the example pipelines that read a file's duration or size.
  gstreamer1.0-plugins-base-apps
  gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad
  gstreamer1.0-libav
  # The remote backend's HTTPS (reqwest on the system OpenSSL).
  libssl-dev
  # rbv serve's store (feature server): the system SQLite.
  libsqlite3-dev
  # rbv serve's PostgreSQL store: the test suite runs the server tests on a
  # throwaway cluster too (setup/pg.sh).
  postgresql-15
  postgresql-client-15
  # setup/s3.sh asks the throwaway S3 server whether it is ready with a
  # signed request (curl --aws-sigv4).
  curl
  # rbv serve writes WebM with alpha (VP9), GIF and animated WebP with ffmpeg
  # (GStreamer 1.22 has no encoder for them).
  ffmpeg
  # For the Python app example and its test (PyGObject + GStreamer introspection).
  python3-gi
  gir1.2-gstreamer-1.0
)
# Python (with venv and pip) and npm fetch the registry packages; a toolchain
# installed outside apt (pyenv, nodesource) serves as well as Debian's.
probe=$(mktemp -d)
python3 -m venv "$probe/venv" >/dev/null 2>&1 || APT_PACKAGES+=(python3 python3-venv python3-pip)
rm -rf "$probe"
command -v npm >/dev/null || APT_PACKAGES+=(npm)

if [ "${1:-}" != "--no-apt" ]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "rbv setup: installing system packages: ${missing[*]}"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

command -v cargo >/dev/null || { echo "rbv setup: cargo (Rust >= 1.92) is required; install it with rustup" >&2; exit 1; }
exec python3 "$here/fetch.py"
