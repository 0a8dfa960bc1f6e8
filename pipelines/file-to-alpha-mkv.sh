#!/usr/bin/env bash
# Any video file -> Matroska/FFV1 with the background transparent (alpha kept;
# plays back in GStreamer as BGRA).
#   pipelines/file-to-alpha-mkv.sh IN OUT.mkv [rbvremove properties...]
set -euo pipefail
source "$(dirname "$0")/env.sh"
in=$1 out=$2; shift 2
gst-launch-1.0 -q filesrc location="$in" ! decodebin ! videoconvert ! queue ! \
  rbvremove "$@" ! videoconvert ! avenc_ffv1 ! matroskamux ! filesink location="$out"
