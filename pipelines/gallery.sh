#!/usr/bin/env bash
# Runs the example pipelines on a clip and saves one frame of each result as a
# 640x360 JPEG in OUTDIR (the pictures in the README are made this way).
#   pipelines/gallery.sh IN IMAGE OTHER_VIDEO OUTDIR
set -euo pipefail
here=$(dirname "$0")
source "$here/env.sh"
in=$1 image=$2 other=$3 dir=$4
# FRAME: which frame of the clip to show (default 12, half a second in).
frame=${FRAME:-12}
mkdir -p "$dir"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# Frame $frame of a video, over a checkerboard where it is
# transparent, as a 640x360 JPEG.
snap() {
  gst-launch-1.0 -q filesrc location="$1" ! decodebin ! identity eos-after=$((frame + 3)) ! \
    videoconvert ! video/x-raw,format=RGBA ! pngenc ! multifilesink location="$tmp/f_%03d.png"
  gst-launch-1.0 -q filesrc location="$tmp/$(printf f_%03d.png "$frame")" ! pngdec ! videoconvert ! \
    videoscale ! video/x-raw,width=640,height=360,pixel-aspect-ratio=1/1 ! \
    imagefreeze num-buffers=1 ! compositor background=checker ! videoconvert ! \
    jpegenc quality=85 ! filesink location="$2"
  rm -f "$tmp"/f_*.png
}

"$here/file-to-alpha-mkv.sh" "$in" "$tmp/transparent.mkv"
snap "$tmp/transparent.mkv" "$dir/transparent.jpg"
"$here/presenter-on-color.sh" "$in" "$tmp/color.webm" green
snap "$tmp/color.webm" "$dir/color.jpg"
"$here/presenter-on-image.sh" "$in" "$image" "$tmp/image.webm"
snap "$tmp/image.webm" "$dir/image.jpg"
"$here/blurred-background.sh" "$in" "$tmp/blur.webm" 24
snap "$tmp/blur.webm" "$dir/blur.jpg"
"$here/picture-in-picture.sh" "$in" "$tmp/pip.webm"
snap "$tmp/pip.webm" "$dir/picture-in-picture.jpg"
# The first 2 s of OTHER, so the mix does not run for all of a long file.
gst-launch-1.0 -q filesrc location="$other" ! decodebin ! identity eos-after=50 ! videoconvert ! \
  vp8enc deadline=1 ! webmmux ! filesink location="$tmp/other.webm"
"$here/over-video.sh" "$in" "$tmp/other.webm" "$tmp/over.webm"
snap "$tmp/over.webm" "$dir/over-video.jpg"
"$here/file-to-alpha-mkv.sh" "$in" "$tmp/mask.mkv" background=mask
snap "$tmp/mask.mkv" "$dir/mask.jpg"
ls "$dir"
