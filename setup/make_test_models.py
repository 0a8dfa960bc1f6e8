#!/usr/bin/env python3
"""A valid ONNX model that is no image mask model (input [1,10]), for the error tests."""
import sys

from onnx import TensorProto, checker, helper, save

graph = helper.make_graph(
    [helper.make_node("Relu", ["features"], ["out"])],
    "not_a_mask",
    [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 10])],
    [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 10])],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
checker.check_model(model)
save(model, sys.argv[1])
