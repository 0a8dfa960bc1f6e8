#!/usr/bin/env bash
# The mask controls side by side: one photo cut with the default soft alpha,
# then with mask-threshold, mask-grow (negative: shrink) and mask-feather,
# each over a checkerboard and cropped to an edge, as JPEGs in OUTDIR (the
# README's pictures are made this way).
#   pipelines/mask-controls.sh IMAGE OUTDIR [CROP]
# CROP: left,top,width,height of the region shown (default: a head and
# shoulder of zidane.jpg, 1280x720).
set -euo pipefail
here=$(dirname "$0")
source "$here/env.sh"
image=$1 dir=$2 crop=${3:-790,40,320,240}
IFS=, read -r left top width height <<<"$crop"
mkdir -p "$dir"
info=$(gst-discoverer-1.0 "$image")
iw=$(sed -n 's/^ *Width: //p' <<<"$info" | head -n1)
ih=$(sed -n 's/^ *Height: //p' <<<"$info" | head -n1)
right=$((iw - left - width)) bottom=$((ih - top - height))
shot() {
  local name=$1; shift
  gst-launch-1.0 -q filesrc location="$image" ! decodebin ! videoconvert ! imagefreeze num-buffers=1 ! \
    rbvremove "$@" ! videocrop left="$left" top="$top" right="$right" bottom="$bottom" ! \
    videoscale ! video/x-raw,width=$((width * 3 / 2)),height=$((height * 3 / 2)) ! \
    compositor background=checker ! videoconvert ! jpegenc quality=88 ! \
    filesink location="$dir/$name.jpg"
}
shot soft
shot threshold mask-threshold=0.5
shot shrink mask-threshold=0.5 mask-grow=-4
shot feather mask-threshold=0.5 mask-grow=-2 mask-feather=6
ls "$dir"
