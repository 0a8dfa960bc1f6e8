#!/usr/bin/env bash
# Any video file -> one RGBA PNG per frame, background transparent.
#   pipelines/file-to-png-frames.sh IN OUTDIR [rbvremove properties...]
set -euo pipefail
source "$(dirname "$0")/env.sh"
in=$1 dir=$2; shift 2
mkdir -p "$dir"
gst-launch-1.0 -q filesrc location="$in" ! decodebin ! videoconvert ! queue ! \
  rbvremove "$@" ! pngenc ! multifilesink location="$dir/frame_%05d.png"
