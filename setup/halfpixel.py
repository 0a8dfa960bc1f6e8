#!/usr/bin/env python3
"""Rewrites u2net/u2netp's Resize nodes from `pytorch_half_pixel` to `half_pixel`.

The two coordinate modes are the same formula, x_in = (x_out + 0.5) / scale - 0.5,
except that pytorch_half_pixel maps to 0 where an output axis has length 1.
ONNX Runtime's NCHWc layout optimisation (level "all", CPU) turns a linear
Resize into its blocked-layout Upsample only for half_pixel, asymmetric or
align_corners; with rembg's pytorch_half_pixel, each of the 38 Resize nodes
leaves the blocked layout and comes back (about 107 Reorder nodes at run time
in the optimised graph, against 13 after this rewrite).

The rewrite is exact where no Resize output has an axis of length 1: checked
here by running the rewritten model once with ONNX Runtime at its fixed input
size with every Resize output exposed (refused otherwise), and the outputs of
both files compared on that input. Nothing else in the file changes, so the
output is a function of the input bytes alone (set-up pins its sha256).

usage: halfpixel.py IN.onnx OUT.onnx
"""
import os
import sys

import numpy as np
import onnx


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = sys.argv[1:]
    model = onnx.load(src)
    resized = []
    for n in model.graph.node:
        if n.op_type != "Resize":
            continue
        for a in n.attribute:
            if a.name == "coordinate_transformation_mode" and a.s == b"pytorch_half_pixel":
                a.s = b"half_pixel"
                resized.append(n.output[0])
    if not resized:
        sys.exit(f"halfpixel: {src} has no pytorch_half_pixel Resize")
    onnx.checker.check_model(model, full_check=True)

    # The check: every rewritten Resize's output has no axis of length 1, and
    # the outputs match the original's.
    import onnxruntime as ort

    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or min(dims) < 1:
        sys.exit(f"halfpixel: {src}: input shape {dims} is not fixed; cannot check the rewrite")
    x = np.random.default_rng(0).standard_normal(dims).astype(np.float32)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.ValueInfoProto(name=r) for r in resized if r not in known)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    name = model.graph.input[0].name
    outs = ort.InferenceSession(probe.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(
        resized, {name: x})
    flat = [(r, o.shape) for r, o in zip(resized, outs) if min(o.shape[2:]) <= 1]
    if flat:
        sys.exit(f"halfpixel: Resize outputs with an axis of length 1, where the modes differ: {flat}")
    new = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, {name: x})
    old = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"]).run(None, {name: x})
    diff = max(float(np.abs(p - q).max()) for p, q in zip(old, new))
    if diff > 1e-4:
        sys.exit(f"halfpixel: outputs differ by {diff:.2e}")

    tmp = dst + ".part"
    onnx.save(model, tmp)
    os.replace(tmp, dst)
    print(f"halfpixel: {src} -> {dst}: {len(resized)} Resize nodes; outputs within {diff:.1e}", file=sys.stderr)


if __name__ == "__main__":
    main()
