#!/usr/bin/env bash
# The presenter cut out (transparent output) and laid over another video with
# GStreamer's own compositor: the presenter at 60 % size, bottom-left, over
# OTHER cropped to 16:9 and scaled to 1280x720.
#   pipelines/over-video.sh IN OTHER OUT.webm [rbvremove properties...]
set -euo pipefail
source "$(dirname "$0")/env.sh"
in=$1 other=$2 out=$3; shift 3
gst-launch-1.0 -q compositor name=mix ! video/x-raw,width=1280,height=720 ! $webm ! \
    filesink location="$out" \
  filesrc location="$other" ! decodebin ! videoconvert ! aspectratiocrop aspect-ratio=16/9 ! videoscale ! \
    video/x-raw,width=1280,height=720,pixel-aspect-ratio=1/1 ! mix.sink_0 \
  filesrc location="$in" ! decodebin ! videoconvert ! videoscale ! \
    video/x-raw,width=1280,height=720,pixel-aspect-ratio=1/1 ! queue ! \
    rbvremove canvas-width=1280 canvas-height=720 anchor=bottom-left scale=0.6 "$@" ! \
    mix.sink_1
