#!/usr/bin/env bash
# A video with alpha -> one PNG a person can look at: four frames (0, 2, 4, 6 s)
# over a checkerboard, in a 2x2 grid of 640x360 tiles.
#   pipelines/preview.sh IN_WITH_ALPHA OUT.png
set -euo pipefail
in=$1 out=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
gst-launch-1.0 -q filesrc location="$in" ! decodebin ! videoconvert ! videorate ! \
  video/x-raw,framerate=1/2 ! videoscale ! video/x-raw,width=640,height=360,pixel-aspect-ratio=1/1 ! \
  pngenc ! multifilesink location="$tmp/t_%d.png"
tiles=()
for i in 0 1 2 3; do
  [ -f "$tmp/t_$i.png" ] || { echo "preview: $in has no frame at $((2 * i)) s" >&2; exit 1; }
  tiles+=(filesrc location="$tmp/t_$i.png" ! pngdec ! videoconvert ! imagefreeze num-buffers=1 ! c.)
done
gst-launch-1.0 -q compositor name=c background=checker \
  sink_1::xpos=640 sink_2::ypos=360 sink_3::xpos=640 sink_3::ypos=360 ! \
  video/x-raw,width=1280,height=720 ! videoconvert ! pngenc ! filesink location="$out" "${tiles[@]}"
