#!/usr/bin/env bash
# The GPU benchmark, for a machine with an NVIDIA GPU: the GPU build of ONNX
# Runtime (setup/gpu.sh), then `cargo bench -p gst-plugin-rbv --bench fps` in its provider mode:
# model=pro and model=original at 1080p I420 with execution-provider=cuda and
# tensorrt (strict: a provider that cannot run is reported, never replaced by the
# CPU), beside the CPU figures of the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi -L || echo "no nvidia-smi: the GPU rows will report why they cannot run" >&2
eval "$(setup/gpu.sh)"
RBV_BENCH_PROVIDERS=cpu,cuda,tensorrt cargo bench -p gst-plugin-rbv --bench fps
