#!/usr/bin/env python3
"""Convert MediaPipe's selfie segmentation TFLite models to ONNX.

A small, deterministic converter written for exactly the operators these two
models use (MobileNetV3-style encoder/decoder): CONV_2D, DEPTHWISE_CONV_2D,
HARD_SWISH, RELU, LOGISTIC, ADD, MUL, AVERAGE_POOL_2D, MEAN, RESIZE_BILINEAR,
DEQUANTIZE (fp16 weights, folded to fp32) and MediaPipe's custom
Convolution2DTransposeBias.  Any other operator stops the conversion with an
error naming it.

The ONNX graph keeps the TFLite interface (NHWC input `input_1`, NHWC output
with the original name) and runs NCHW inside, which is what ONNX Runtime's CPU
kernels are fast at.  Only needs the `tflite`, `onnx` and `numpy` packages.

usage: tflite2onnx_selfie.py IN.tflite OUT.onnx
"""
import sys

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper
from tflite.BuiltinOperator import BuiltinOperator

OP_NAMES = {v: k for k, v in BuiltinOperator.__dict__.items() if not k.startswith("_")}
TFL_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32}
NHWC_TO_NCHW = [0, 3, 1, 2]
NCHW_TO_NHWC = [0, 2, 3, 1]


class Converter:
    def __init__(self, buf):
        self.model = tflite.Model.GetRootAsModel(buf, 0)
        if self.model.SubgraphsLength() != 1:
            raise SystemExit("expected one subgraph")
        self.g = self.model.Subgraphs(0)
        self.nodes = []
        self.inits = []
        self.consts = {}  # tensor index -> numpy array (folded constants)
        self.names = {}  # tensor index -> ONNX value name (NCHW for 4-D activations)
        self.counter = 0

    # -- helpers ---------------------------------------------------------
    def tensor(self, i):
        return self.g.Tensors(int(i))

    def shape(self, i):
        return [int(d) for d in self.tensor(i).ShapeAsNumpy()]

    def const(self, i):
        i = int(i)
        if i in self.consts:
            return self.consts[i]
        t = self.tensor(i)
        data = self.model.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(data, int) or len(data) == 0:
            return None
        dtype = TFL_DTYPES.get(t.Type())
        if dtype is None:
            raise SystemExit(f"tensor {t.Name().decode()}: unsupported type {t.Type()}")
        arr = np.frombuffer(data.tobytes(), dtype=dtype).reshape(self.shape(i))
        self.consts[i] = arr
        return arr

    def fresh(self, hint):
        self.counter += 1
        return f"{hint}_{self.counter}"

    def init(self, hint, arr):
        name = self.fresh(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(self, op, inputs, outputs, **attrs):
        self.nodes.append(helper.make_node(op, inputs, outputs, name=self.fresh(op), **attrs))

    @staticmethod
    def options(op, cls):
        o = cls()
        bo = op.BuiltinOptions()
        o.Init(bo.Bytes, bo.Pos)
        return o

    def activation(self, out_name, fused):
        """Apply a fused activation after the node that wrote `out_name + '_pre'`."""
        if fused == 0:
            return
        if fused == 1:
            self.node("Relu", [out_name + "_pre"], [out_name])
        elif fused == 3:
            self.node("Clip", [out_name + "_pre", self.init("zero", np.float32(0)), self.init("six", np.float32(6))], [out_name])
        else:
            raise SystemExit(f"unsupported fused activation {fused}")

    @staticmethod
    def same_pads(size, k, s, d):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        return total // 2, total - total // 2

    def conv_pads(self, padding, in_shape, kh, kw, sh, sw, dh, dw):
        if padding == 1:  # VALID
            return [0, 0, 0, 0]
        t, b = self.same_pads(in_shape[1], kh, sh, dh)
        l, r = self.same_pads(in_shape[2], kw, sw, dw)
        return [t, l, b, r]

    def out_name(self, op, fused):
        name = self.names[int(op.Outputs(0))] = self.fresh("t")
        return name + "_pre" if fused else name

    # -- operators -------------------------------------------------------
    def convert(self):
        g = self.g
        if g.InputsLength() != 1 or g.OutputsLength() != 1:
            raise SystemExit("expected one input and one output")
        in_idx, out_idx = int(g.Inputs(0)), int(g.Outputs(0))
        in_name = self.tensor(in_idx).Name().decode()
        out_name = self.tensor(out_idx).Name().decode()
        self.names[in_idx] = "input_nchw"
        self.node("Transpose", [in_name], ["input_nchw"], perm=NHWC_TO_NCHW)

        for k in range(g.OperatorsLength()):
            op = g.Operators(k)
            oc = self.model.OperatorCodes(op.OpcodeIndex())
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            name = OP_NAMES.get(code, str(code))
            if name == "CUSTOM":
                name = "CUSTOM:" + oc.CustomCode().decode()
            handler = getattr(self, "op_" + name.replace(":", "_"), None)
            if handler is None:
                raise SystemExit(f"operator {name} (#{k}) is not supported by this converter")
            handler(op)

        self.node("Transpose", [self.names[out_idx]], [out_name], perm=NCHW_TO_NHWC)
        in_shape, out_shape = self.shape(in_idx), self.shape(out_idx)
        graph = helper.make_graph(
            self.nodes,
            "selfie_segmentation",
            [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_shape)],
            [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)],
            self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="rbv-tflite2onnx")
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model

    def op_DEQUANTIZE(self, op):
        src = self.const(op.Inputs(0))
        if src is None:
            raise SystemExit("DEQUANTIZE of a non-constant tensor")
        self.consts[int(op.Outputs(0))] = src.astype(np.float32)

    def conv(self, op, o, weights, **attrs):
        """Conv from TFLite options `o` and weights already in ONNX [Cout, Cin/group, kh, kw] order."""
        x, _, b = (int(i) for i in op.InputsAsNumpy())
        kh, kw = weights.shape[2:]
        inputs = [self.names[x], self.init("w", weights)]
        if b >= 0:
            inputs.append(self.init("b", self.const(b)))
        dh, dw = o.DilationHFactor(), o.DilationWFactor()
        pads = self.conv_pads(o.Padding(), self.shape(x), kh, kw, o.StrideH(), o.StrideW(), dh, dw)
        out = self.out_name(op, o.FusedActivationFunction())
        self.node("Conv", inputs, [out], kernel_shape=[kh, kw], strides=[o.StrideH(), o.StrideW()], dilations=[dh, dw], pads=pads, **attrs)
        self.activation(self.names[int(op.Outputs(0))], o.FusedActivationFunction())

    def op_CONV_2D(self, op):
        wt = self.const(op.Inputs(1))  # [Cout, kh, kw, Cin]
        self.conv(op, self.options(op, tflite.Conv2DOptions), wt.transpose(0, 3, 1, 2))

    def op_DEPTHWISE_CONV_2D(self, op):
        wt = self.const(op.Inputs(1))  # [1, kh, kw, Cout]
        cin = self.shape(op.Inputs(0))[3]
        if wt.shape[3] != cin:
            raise SystemExit("depth multiplier other than 1 is not supported")
        self.conv(op, self.options(op, tflite.DepthwiseConv2DOptions), wt.transpose(3, 0, 1, 2), group=cin)

    def unary(self, op, onnx_op):
        self.node(onnx_op, [self.names[int(op.Inputs(0))]], [self.out_name(op, 0)])

    def op_HARD_SWISH(self, op):
        self.unary(op, "HardSwish")

    def op_RELU(self, op):
        self.unary(op, "Relu")

    def op_LOGISTIC(self, op):
        self.unary(op, "Sigmoid")

    def binary(self, op, onnx_op, cls):
        o = self.options(op, cls)
        ins = [int(i) for i in op.InputsAsNumpy()]
        if any(self.const(i) is not None for i in ins):
            raise SystemExit(f"{onnx_op} with a constant operand is not supported")
        out = self.out_name(op, o.FusedActivationFunction())
        self.node(onnx_op, [self.names[i] for i in ins], [out])
        self.activation(self.names[int(op.Outputs(0))], o.FusedActivationFunction())

    def op_ADD(self, op):
        self.binary(op, "Add", tflite.AddOptions)

    def op_MUL(self, op):
        self.binary(op, "Mul", tflite.MulOptions)

    def op_AVERAGE_POOL_2D(self, op):
        o = self.options(op, tflite.Pool2DOptions)
        x = int(op.Inputs(0))
        _, h, w, _ = self.shape(x)
        out = self.out_name(op, o.FusedActivationFunction())
        if (o.FilterHeight(), o.FilterWidth()) == (h, w) and self.shape(op.Outputs(0))[1:3] == [1, 1]:
            self.node("GlobalAveragePool", [self.names[x]], [out])
        else:
            kh, kw = o.FilterHeight(), o.FilterWidth()
            pads = self.conv_pads(o.Padding(), self.shape(x), kh, kw, o.StrideH(), o.StrideW(), 1, 1)
            self.node("AveragePool", [self.names[x]], [out], kernel_shape=[kh, kw], strides=[o.StrideH(), o.StrideW()], pads=pads, count_include_pad=0)
        self.activation(self.names[int(op.Outputs(0))], o.FusedActivationFunction())

    def op_MEAN(self, op):
        o = self.options(op, tflite.ReducerOptions)
        x, axes = (int(i) for i in op.InputsAsNumpy())
        ax = sorted(int(a) % 4 for a in self.const(axes).reshape(-1))
        if ax != [1, 2] or not o.KeepDims():
            raise SystemExit(f"MEAN over axes {ax} keep_dims={o.KeepDims()} is not supported")
        self.node("GlobalAveragePool", [self.names[x]], [self.out_name(op, 0)])

    def op_RESIZE_BILINEAR(self, op):
        o = self.options(op, tflite.ResizeBilinearOptions)
        x, size = (int(i) for i in op.InputsAsNumpy())
        h, w = (int(v) for v in self.const(size))
        n, _, _, c = self.shape(x)
        if o.AlignCorners():
            mode = "align_corners"
        elif o.HalfPixelCenters():
            mode = "half_pixel"
        else:
            mode = "asymmetric"
        sizes = self.init("sizes", np.array([n, c, h, w], dtype=np.int64))
        self.node("Resize", [self.names[x], "", "", sizes], [self.out_name(op, 0)], mode="linear", coordinate_transformation_mode=mode)

    def op_CUSTOM_Convolution2DTransposeBias(self, op):
        x, w, b = (int(i) for i in op.InputsAsNumpy())
        padding, stride_w, stride_h = np.frombuffer(op.CustomOptionsAsNumpy().tobytes(), dtype=np.int32)[:3]
        wt = self.const(w)  # [Cout, kh, kw, Cin]
        _, kh, kw, _ = wt.shape
        in_shape, out_shape = self.shape(x), self.shape(op.Outputs(0))
        # TFLite TRANSPOSE_CONV semantics: output size is given; with SAME the
        # total padding is (in-1)*s + k - out, split with the extra at the end.
        pads = []
        for dim, (k, s) in ((1, (kh, stride_h)), (2, (kw, stride_w))):
            total = max((in_shape[dim] - 1) * s + k - out_shape[dim], 0) if padding == 1 else 0
            pads.append((total // 2, total - total // 2))
        self.node(
            "ConvTranspose",
            [self.names[x], self.init("w", wt.transpose(3, 0, 1, 2)), self.init("b", self.const(b))],
            [self.out_name(op, 0)],
            kernel_shape=[int(kh), int(kw)],
            strides=[int(stride_h), int(stride_w)],
            pads=[pads[0][0], pads[1][0], pads[0][1], pads[1][1]],
        )


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    model = Converter(open(sys.argv[1], "rb").read()).convert()
    onnx.save(model, sys.argv[2])


if __name__ == "__main__":
    main()
