#!/usr/bin/env bash
# Every figure the README and docs/ give, made again: each part runs one bench
# or script and writes what it printed to docs/bench/, with the command, the
# date, the machine and its load at the start as the first lines. The README's
# tables name the file their figures come from (`<!-- figures: ... -->`), and
# gst-plugin-rbv/tests/docs.rs checks that every number in them is in it.
#
#   benches/figures.sh                 every part below, in this order (about 2 hours on 2 cores)
#   benches/figures.sh fps compose     some of them
#
# Speed figures want a quiet machine: run nothing else meanwhile. Quality figures do
# not depend on speed, except the live rows (real time) and async-live.
#
# Parts and what they write:
#   fps           cargo bench --bench fps: the element's fps table, live async rows, memory
#                 (fps.txt, fps.json, and the plot fps.png)
#   detector      RBV_BENCH_DETECTOR=1 cargo bench --bench fps (detector-fps.txt)
#   live          cargo bench --bench live: live sources into a clock-synced sink, 60 s a
#                 row: fps out, late frames, the element's time per frame, its latency (live.txt)
#   profile       cargo bench --bench profile: the frame path stage by stage (profile.txt)
#   compose       cargo bench --bench compose: the compositor alone (compose.txt)
#   async-live    benches/async_live.sh on the demo clip, every model (async-live.txt)
#   quality-live  the quality bench's live rows, RBV_QUALITY_LIVE=only (quality-live.txt)
#   quality-human the quality bench for `human` with the variants the README compares
#                 (matting model alone, smoothing, refine, mask controls; quality-human.txt)
#   quality       the quality bench, every model, no live rows (quality.txt)
#   ort-options   benches/ort_options.py: the heavy models' inference time, pro's float16 file
#                 against float32 (ort-options.txt)
#   server-load   RBV_SERVER_JOBS=1000 cargo bench -p rbv-cli --bench server_load: load and soak
#                 of `rbv serve` (server-load.txt)
#   server-cluster cargo bench -p rbv-cli --bench server_cluster: an API node and 1, then
#                 2 worker processes on a throwaway PostgreSQL, media in a shared
#                 directory, then in a throwaway SeaweedFS bucket (server-cluster.txt)
#   soak          cargo bench --bench soak, 30 000 frames (RSS as it goes, every 5000 after a
#                 10 000-frame warm-up; with the detector on, as by default, 20-30 min) (soak.txt)
#   peer          benches/peer.sh: against MediaPipe (peer.txt, peer.json)
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/bench
mkdir -p "$out" target/bench

all=(fps detector live profile compose async-live quality-live quality-human quality ort-options server-load server-cluster soak peer)
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=("${all[@]}")
for part in "${parts[@]}"; do
  case " ${all[*]} " in *" $part "*) ;; *) echo "figures.sh: unknown part '$part' (parts: ${all[*]})" >&2; exit 2 ;; esac
done

setup/setup.sh >/dev/null
cache=${RBV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rbv}
# The benches and scripts use the optimised plugin (LTO, as shipped).
cargo build --release -p gst-plugin-rbv
export GST_PLUGIN_PATH="$PWD/target/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"

# run FILE COMMAND...: the command's standard output into docs/bench/FILE,
# after a header; its standard error (cargo's progress) stays on the terminal.
run() {
  local file=$1
  shift
  local started=$SECONDS
  {
    echo "# benches/figures.sh: $*"
    echo "# $(date -u +%Y-%m-%d), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
    "$@"
  } >"$out/$file.tmp"
  mv "$out/$file.tmp" "$out/$file"
  echo "figures.sh: $out/$file in $((SECONDS - started)) s" >&2
}

human_variants="detector=false smoothing=0.5;detector=false smoothing=0.8;detector=false smoothing=0.9"
human_variants+=";detector=false;detector=false smoothing=0 refine=true;refine=true"
human_variants+=";detector=false smoothing=0 human-variant=square;detector=false smoothing=0 human-variant=landscape"
human_variants+=";mask-threshold=0.5;mask-threshold=0.5 mask-grow=-2;mask-threshold=0.5 mask-grow=2"
human_variants+=";mask-feather=3;mask-threshold=0.5 mask-feather=3"
human_variants+=";smoothing-threshold=12;smoothing-threshold=32;smoothing=0.9;smoothing-threshold=255"

for part in "${parts[@]}"; do
  case $part in
    fps)
      run fps.txt cargo bench -q -p gst-plugin-rbv --bench fps
      cp target/bench/fps.json "$out/fps.json"
      if ! /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
        sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get install -y python3-matplotlib >&2
      fi
      /usr/bin/python3 benches/plot.py
      ;;
    detector) run detector-fps.txt env RBV_BENCH_DETECTOR=1 cargo bench -q -p gst-plugin-rbv --bench fps ;;
    live) run live.txt cargo bench -q -p gst-plugin-rbv --bench live ;;
    profile) run profile.txt cargo bench -q -p gst-plugin-rbv --bench profile ;;
    compose) run compose.txt cargo bench -q -p gst-plugin-rbv --bench compose ;;
    async-live) run async-live.txt benches/async_live.sh "$cache/data/demo_input.webm" "human light original pro" ;;
    quality-live) run quality-live.txt env RBV_QUALITY_LIVE=only cargo bench -q -p gst-plugin-rbv --bench quality ;;
    quality-human)
      run quality-human.txt env RBV_QUALITY_MODELS=human RBV_QUALITY_LIVE=0 RBV_QUALITY_SIZES=0 \
        RBV_QUALITY_VARIANTS="$human_variants" cargo bench -q -p gst-plugin-rbv --bench quality
      ;;
    quality) run quality.txt env RBV_QUALITY_LIVE=0 cargo bench -q -p gst-plugin-rbv --bench quality ;;
    ort-options)
      run ort-options.txt "$cache/venv/bin/python" benches/ort_options.py --models pro,original,light \
        --configs base,pattern-off --rounds 2
      ;;
    server-load) run server-load.txt env RBV_SERVER_JOBS=1000 cargo bench -q -p rbv-cli --bench server_load ;;
    server-cluster) run server-cluster.txt cargo bench -q -p rbv-cli --bench server_cluster ;;
    soak) run soak.txt env RBV_SOAK_FRAMES=30000 cargo bench -q -p gst-plugin-rbv --bench soak ;;
    peer)
      run peer.txt env RBV_PLUGIN_DIR="$PWD/target/release" benches/peer.sh
      cp target/bench/peer.json "$out/peer.json"
      ;;
  esac
done
