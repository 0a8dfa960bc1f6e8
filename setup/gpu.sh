#!/usr/bin/env bash
# On request, for NVIDIA machines: the GPU build of ONNX Runtime 1.31.1 (CUDA and
# TensorRT providers, pinned and sha256-checked by setup/fetch.py --gpu; built for
# CUDA 13) and, when the machine lacks them, the CUDA 13.0 / cuDNN 9 runtime
# libraries from NVIDIA's wheels (versions pinned here; the NVIDIA driver, 580 or
# later, and TensorRT 10 for execution-provider=tensorrt come from the machine).
# Prints the environment that makes rbvremove use it:
#   eval "$(setup/gpu.sh)"
#   gst-launch-1.0 ... ! rbvremove model=pro execution-provider=cuda ! ...
set -euo pipefail
cd "$(dirname "$0")/.."
setup/setup.sh >&2
python3 setup/fetch.py --gpu >&2
cache=${RBV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rbv}
libs="$cache/onnxruntime-gpu"
have() { ldconfig -p | grep -q "$1"; }
if ! { have libcudart.so.13 && have libcublasLt.so.13 && have libcurand.so.10 && have libcudnn.so.9; }; then
  echo "rbv setup: CUDA 13 / cuDNN 9 libraries not on this machine: fetching NVIDIA's wheels" >&2
  venv="$cache/venv/bin/python"
  wheels="$cache/downloads/cuda"
  mkdir -p "$wheels" "$cache/cuda"
  "$venv" -m pip download -q --disable-pip-version-check --no-deps -d "$wheels" \
    nvidia-cuda-runtime==13.0.96 nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35 \
    nvidia-cudnn-cu13==9.13.1.26 >&2
  for w in "$wheels"/*.whl; do
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$w" "$cache/cuda"
  done
  for d in "$cache"/cuda/nvidia/*/lib "$cache"/cuda/nvidia/*/*/lib; do
    [ -d "$d" ] && libs="$libs:$d"
  done
fi
echo "export RBV_ORT_LIBRARY='$cache/onnxruntime-gpu/libonnxruntime.so.1.31.1'"
echo "export LD_LIBRARY_PATH='$libs'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
