#!/usr/bin/env bash
# mode=async at real time on a real clip: the demo clip decoded and played
# against the clock (fakesink sync=true), through rbvremove for each model,
# read off the rbv-stats messages (gst-launch-1.0 -m): output fps, mean and
# largest mask age (frames), the share of 1 s windows in which a mask
# finished, and (to the window) the frames
# that left before the first mask. Figures on stdout, one row a model.
#   benches/async_live.sh [CLIP] [MODELS]   (default: the demo clip; human light original)
set -euo pipefail
cd "$(dirname "$0")/.."
source pipelines/env.sh
cache=${RBV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rbv}
clip=${1:-$cache/data/demo_input.webm}
models=${2:-human light original}
printf '%-10s %8s %10s %9s %12s %14s\n' model fps "mask age" "age max" "mask windows" "before 1st"
for model in $models; do
  gst-launch-1.0 -m filesrc location="$clip" ! decodebin ! videoconvert ! queue ! \
    rbvremove mode=async model="$model" stats-interval=1000 ! fakesink sync=true 2>&1 |
    awk -v model="$model" '
      # A field of the message, or -1 when it is not there.
      function field(key,    s) {
        if (!match($0, key "=\\([a-z0-9]+\\)[0-9.]+")) return -1
        s = substr($0, RSTART, RLENGTH); sub(/.*\)/, "", s); return s + 0
      }
      /rbv-stats/ {
        n = field("window-frames"); age = field("mask-age"); fps = field("fps")
        windows++; frames += n; fpssum += fps
        if (age < 0) { before += n } else { agesum += age; ages++; if (age > agemax) agemax = age }
        if (field("inference-p50-ms") >= 0) inferring++
      }
      END {
        printf "%-10s %8.1f %10.1f %9d %12.2f %14d\n", model, fpssum / (windows ? windows : 1),
          agesum / (ages ? ages : 1), agemax, inferring / (windows ? windows : 1), before
      }'
done
