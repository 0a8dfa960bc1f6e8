#!/usr/bin/env bash
# Any video file through the hosted /v1 service (backend=remote): uploaded,
# processed there, downloaded and decoded here -> Matroska/FFV1 with alpha.
#   RBV_API_KEY=<your key> pipelines/remote.sh IN OUT.mkv [rbvremove properties...]
# e.g. ... model=pro text-prompt="person, guitar"   or   background=color background-color=white
# RBV_API_URL=<base URL> points it at another /v1 server (self-hosted, or a test one).
# The key comes from the environment on purpose: GStreamer logs whole gst-launch lines
# at GST_DEBUG=*:4, so a key written into one would land in those logs.
set -euo pipefail
source "$(dirname "$0")/env.sh"
in=$1 out=$2; shift 2
: "${RBV_API_KEY:?set RBV_API_KEY to your API key}"
gst-launch-1.0 -q filesrc location="$in" ! decodebin ! videoconvert ! \
  rbvremove backend=remote ${RBV_API_URL:+api-url="$RBV_API_URL"} "$@" ! \
  videoconvert ! avenc_ffv1 ! matroskamux ! filesink location="$out"
