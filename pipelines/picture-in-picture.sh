#!/usr/bin/env bash
# The presenter at 40 % size in the bottom-right corner of a 1920x1080 canvas,
# 48 px in from the edges, on a dark slate colour (the same composition as the
# hosted service's {"canvas":{"width":1920,"height":1080},"foreground":
# {"anchor":"bottom-right","scale":0.4,"offset":{"x":-48,"y":-48}}}).
#   pipelines/picture-in-picture.sh IN OUT.webm [rbvremove properties...]
set -euo pipefail
source "$(dirname "$0")/env.sh"
in=$1 out=$2; shift 2
gst-launch-1.0 -q filesrc location="$in" ! decodebin ! videoconvert ! queue ! \
  rbvremove canvas-width=1920 canvas-height=1080 anchor=bottom-right scale=0.4 \
    offset-x=-48 offset-y=-48 background=color background-color="#202830" "$@" ! \
  $webm ! filesink location="$out"
