#!/usr/bin/env bash
# The presenter cut out (transparent output) and laid over another video with
# GStreamer's own compositor: the presenter at 60 % size, bottom-left, over
# OTHER cropped to 16:9 and scaled to 1280x720, at 30 fps.
#   pipelines/over-video.sh IN OTHER OUT.webm [rbvremove properties...]
set -euo pipefail
source "$(dirname "$0")/env.sh"
in=$1 other=$2 out=$3; shift 3
# The result lasts as long as the presenter: OTHER is cut at IN's duration
# first (by ffmpeg: GStreamer 1.22 has no trim element, and identity's
# eos-after lets extra buffers through under load); a shorter OTHER leaves
# black after its end.
secs=$(gst-discoverer-1.0 "$in" | sed -n 's/^ *Duration: \([0-9]*\):\([0-9]*\):\([0-9.]*\)$/\1 \2 \3/p' |
  head -n1 | awk '{ printf "%.3f", $1 * 3600 + $2 * 60 + $3 }')
[ -n "$secs" ] || { echo "over-video.sh: cannot read the duration of $in" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ffmpeg -nostdin -v error -i "$other" -t "$secs" -an -c:v ffv1 "$tmp/other.mkv"
gst-launch-1.0 -q compositor name=mix ! \
    video/x-raw,width=1280,height=720,framerate=30/1 ! $webm ! filesink location="$out" \
  filesrc location="$tmp/other.mkv" ! decodebin ! videoconvert ! aspectratiocrop aspect-ratio=16/9 ! videoscale ! \
    video/x-raw,width=1280,height=720,pixel-aspect-ratio=1/1 ! mix.sink_0 \
  filesrc location="$in" ! decodebin ! videoconvert ! videoscale ! \
    video/x-raw,width=1280,height=720,pixel-aspect-ratio=1/1 ! queue ! \
    rbvremove canvas-width=1280 canvas-height=720 anchor=bottom-left scale=0.6 "$@" ! \
    mix.sink_1
