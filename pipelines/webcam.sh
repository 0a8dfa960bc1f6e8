#!/usr/bin/env bash
# A webcam, live: the person over a checkerboard in a window.
#   pipelines/webcam.sh [/dev/video0] [rbvremove properties...]
set -euo pipefail
source "$(dirname "$0")/env.sh"
dev=${1:-/dev/video0}; shift || true
gst-launch-1.0 v4l2src device="$dev" ! videoconvert ! queue max-size-buffers=2 leaky=downstream ! \
  rbvremove "$@" ! compositor background=checker ! videoconvert ! autovideosink sync=false
