#!/usr/bin/env python3
"""Checks setup/fp16to32.py's ISNet float32 file against the float16 original.

Runs both files with ONNX Runtime on the test photos, prepared as rbv prepares
`pro`'s input (squashed to 1024x1024 with a linear filter, RGB, NCHW,
`(x - 128) / 256`, src/model.rs's Normalize::IMGLY), and prints the largest
absolute difference of the mask output (and of every output), then the time a
frame of each, interleaved. Exits non-zero when a mask differs by more than
1e-3. Also lists, for the float32 models `light` (u2netp) and `original`
(u2net), what a float16 -> float32 conversion would find in them.
Development check, not part of set-up; runs in set-up's tools venv:
  ~/.cache/rbv/venv/bin/python setup/check_fp16to32.py [CACHE_DIR] [--rounds N]
"""
import argparse
import collections
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image

PHOTOS = ["voc_rgb.jpg", "zidane.jpg", "bus.jpg", "astronaut.png", "grace_hopper.jpg"]
TOLERANCE = 1e-3


def default_cache():
    if os.environ.get("RBV_CACHE_DIR"):
        return Path(os.environ["RBV_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rbv"


def isnet_input(path):
    img = Image.open(path).convert("RGB").resize((1024, 1024), Image.BILINEAR)
    x = (np.asarray(img, dtype=np.float32) - 128.0) / 256.0
    return x.transpose(2, 0, 1)[None].copy()


def session(path, threads):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def census(path):
    m = onnx.load(str(path), load_external_data=False)
    g = m.graph
    inits = collections.Counter(onnx.TensorProto.DataType.Name(t.data_type) for t in g.initializer)
    casts = collections.Counter(
        onnx.TensorProto.DataType.Name(a.i) for n in g.node if n.op_type == "Cast" for a in n.attribute if a.name == "to")
    io = [onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type) for v in (*g.input, *g.output)]
    return f"initializers {dict(inits)}, Casts to {dict(casts)}, input/output types {sorted(set(io))}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cache", nargs="?", type=Path, default=default_cache())
    ap.add_argument("--rounds", type=int, default=3, help="timed runs of each file per photo (0: none)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    models = a.cache / "models"
    f16, f32 = models / "isnet_fp16.onnx", models / "isnet_fp32.onnx"
    for p in (f16, f32):
        if not p.is_file():
            sys.exit(f"check_fp16to32: {p} missing (run setup/setup.sh)")
    for p in (f16, f32, models / "u2netp.onnx", models / "u2net.onnx"):
        print(f"{p.name}: {census(p)}")

    s16, s32 = session(f16, a.threads), session(f32, a.threads)
    names = [o.name for o in s16.get_outputs()]
    if names != [o.name for o in s32.get_outputs()]:
        sys.exit("check_fp16to32: the two files' outputs differ in names or order")
    worst = 0.0
    times = {"fp16": [], "fp32": []}
    for photo in PHOTOS:
        x = isnet_input(a.cache / "data" / photo)
        o16 = s16.run(None, {"input": x})
        o32 = s32.run(None, {"input": x})
        mask = float(np.abs(o16[0] - o32[0]).max())
        every = max(float(np.abs(p - q).max()) for p, q in zip(o16, o32))
        worst = max(worst, mask)
        print(f"{photo:<17} mask max abs diff {mask:.2e} (all {len(names)} outputs: {every:.2e}); "
              f"mask mean {float(o32[0].mean()):.3f}")
        for _ in range(a.rounds):
            for tag, s in (("fp16", s16), ("fp32", s32)):
                t0 = time.perf_counter()
                s.run(None, {"input": x})
                times[tag].append((time.perf_counter() - t0) * 1000)
    if a.rounds:
        m16, m32 = statistics.median(times["fp16"]), statistics.median(times["fp32"])
        print(f"ISNet, {a.threads} intra-op threads, median of {len(times['fp16'])} interleaved runs: "
              f"fp16 {m16:.0f} ms, fp32 {m32:.0f} ms, fp32/fp16 {m32 / m16:.2f}")
    load = os.getloadavg()[0]
    print(f"load average during the check: {load:.2f} on {os.cpu_count()} cores")
    if worst > TOLERANCE:
        sys.exit(f"check_fp16to32: masks differ by {worst:.2e} > {TOLERANCE}")
    print(f"ok: masks within {TOLERANCE} (largest {worst:.2e})")


if __name__ == "__main__":
    main()
