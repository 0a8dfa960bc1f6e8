#!/usr/bin/env bash
# A presenter on a solid colour (green by default: a green screen without
# the green screen).
#   pipelines/presenter-on-color.sh IN OUT.webm [COLOUR] [rbvremove properties...]
# COLOUR: #RRGGBB, a name (green, white, blue, ...) or 0-1 floats "[0.035,0.635,0.274]".
set -euo pipefail
source "$(dirname "$0")/env.sh"
in=$1 out=$2 color=${3:-green}; shift $(( $# < 3 ? $# : 3 ))
gst-launch-1.0 -q filesrc location="$in" ! decodebin ! videoconvert ! queue ! \
  rbvremove background=color background-color="$color" "$@" ! $webm ! filesink location="$out"
