#!/usr/bin/env bash
# The room behind the presenter, blurred (as video-call apps do).
#   pipelines/blurred-background.sh IN OUT.webm [RADIUS] [rbvremove properties...]
set -euo pipefail
source "$(dirname "$0")/env.sh"
in=$1 out=$2 radius=${3:-20}; shift $(( $# < 3 ? $# : 3 ))
gst-launch-1.0 -q filesrc location="$in" ! decodebin ! videoconvert ! queue ! \
  rbvremove background=blur blur-radius="$radius" "$@" ! $webm ! filesink location="$out"
