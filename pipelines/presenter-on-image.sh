#!/usr/bin/env bash
# A presenter on a picture (any image GStreamer decodes), scaled to cover the frame.
#   pipelines/presenter-on-image.sh IN IMAGE OUT.webm [rbvremove properties...]
set -euo pipefail
source "$(dirname "$0")/env.sh"
in=$1 image=$2 out=$3; shift 3
gst-launch-1.0 -q filesrc location="$in" ! decodebin ! videoconvert ! queue ! \
  rbvremove background-image="$image" background=image "$@" ! $webm ! filesink location="$out"
