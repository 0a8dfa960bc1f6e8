#!/usr/bin/env bash
# A presenter on a solid colour (green by default: a green screen without
# the green screen), with the input's sound.
#   pipelines/presenter-on-color.sh IN OUT.webm [COLOUR] [rbvremove properties...]
# COLOUR: #RRGGBB, a name (green, white, blue, ...) or 0-1 floats "[0.035,0.635,0.274]".
set -euo pipefail
source "$(dirname "$0")/env.sh"
in=$1 out=$2 color=${3:-green}; shift $(( $# < 3 ? $# : 3 ))
# The sound: decodebin's audio stream, Opus, into the same muxer. Only when
# the input has one: a muxer waits for every stream linked to it.
sound="" streams=$(gst-discoverer-1.0 "$in" 2>/dev/null || true)
if grep -qE '^ +audio #' <<<"$streams"; then
  sound="d. ! queue ! audioconvert ! audioresample ! opusenc ! mux."
fi
gst-launch-1.0 -q filesrc location="$in" ! decodebin name=d ! videoconvert ! queue ! \
  rbvremove background=color background-color="$color" "$@" ! $webm name=mux ! \
  filesink location="$out" $sound
