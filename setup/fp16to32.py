#!/usr/bin/env python3
"""Turns a float16 ONNX model into the same graph in float32.

ONNX Runtime's CPU provider has no fast float16 kernels: it runs such a graph by
casting around almost every node, which costs about a third of ISNet's time
(issue 18). Here:
- float16 initializers and Constant values become float32 (exact: every
  float16 is a float32);
- Cast nodes to float16 are retargeted to float32, and Casts that then turn a
  float32 into float32 are removed (their consumers, or the graph output they
  fed, read the Cast's input instead);
- graph inputs, outputs and value_info entries of type float16 become float32;
  value_info entries of tensors that no longer exist are dropped;
- nodes are put in topological order (imgly's ISNet fp16 file lists them out of
  order, which onnx.checker refuses), keeping the original order where it
  already is one.
The output is a function of the input bytes alone (no time stamps, no random
names), so set-up can pin its sha256. The result passes onnx.checker.

usage: fp16to32.py IN.onnx OUT.onnx
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

F16, F32 = TensorProto.FLOAT16, TensorProto.FLOAT


def tensor_to_f32(t):
    if t.data_type != F16:
        return t
    new = numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float32), t.name)
    t.CopyFrom(new)
    return t


def retype(value_infos):
    for vi in value_infos:
        tt = vi.type.tensor_type
        if tt.elem_type == F16:
            tt.elem_type = F32


def topo_sort(graph):
    """Kahn's algorithm; among ready nodes the one first in the file goes first."""
    import heapq

    nodes = list(graph.node)
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    producer = {}
    for idx, n in enumerate(nodes):
        for o in n.output:
            if o:
                producer[o] = idx
    waiting = [0] * len(nodes)
    users = [[] for _ in nodes]
    for idx, n in enumerate(nodes):
        deps = {producer[i] for i in n.input if i not in available and i in producer}
        missing = [i for i in n.input if i not in available and i not in producer]
        if missing:
            sys.exit(f"fp16to32: node {n.name} reads {missing}, which nothing produces")
        waiting[idx] = len(deps)
        for d in deps:
            users[d].append(idx)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        idx = heapq.heappop(ready)
        order.append(nodes[idx])
        for u in users[idx]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        sys.exit("fp16to32: the graph has a cycle")
    del graph.node[:]
    graph.node.extend(order)


def convert(model):
    g = model.graph
    if len(model.functions) or any(a.type == onnx.AttributeProto.GRAPH for n in g.node for a in n.attribute):
        sys.exit("fp16to32: sub-graphs and functions are not handled")

    for t in g.initializer:
        tensor_to_f32(t)
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                tensor_to_f32(a.t)
            elif a.type == onnx.AttributeProto.TENSORS:
                for t in a.tensors:
                    tensor_to_f32(t)
        if n.op_type == "Cast":
            for a in n.attribute:
                if a.name == "to" and a.i == F16:
                    a.i = F32
    retype(g.input)
    retype(g.output)
    retype(g.value_info)

    # Element type of every tensor whose type is known, after the above.
    types = {vi.name: vi.type.tensor_type.elem_type for vi in (*g.value_info, *g.input, *g.output)}
    types.update({t.name: t.data_type for t in g.initializer})
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    types[n.output[0]] = a.t.data_type

    graph_outputs = {o.name for o in g.output}
    produced = {o for n in g.node for o in n.output if o}
    to_output = {}  # a producer's output -> the graph output it now writes
    rename = {}  # a removed Cast's output -> the tensor its readers read now

    def resolve(name):
        while name in rename:
            name = rename[name]
        return name

    kept = []
    for n in g.node:
        if n.op_type == "Cast":
            to = next(a.i for a in n.attribute if a.name == "to")
            src, dst = resolve(n.input[0]), n.output[0]
            if to == F32 and types.get(src) == F32:
                if dst not in graph_outputs:
                    rename[dst] = src
                    continue
                # A graph output: its producer writes the output's name instead,
                # where the producer is a node and writes no other graph output.
                if src in produced and src not in graph_outputs and src not in to_output:
                    to_output[src] = dst
                    continue
        kept.append(n)

    def final(name):
        name = resolve(name)
        return to_output.get(name, name)

    for n in kept:
        n.output[:] = [to_output.get(o, o) for o in n.output]
        n.input[:] = [final(i) if i else i for i in n.input]
    removed = len(g.node) - len(kept)
    del g.node[:]
    g.node.extend(kept)

    live = {o for n in g.node for o in n.output}
    vis = [vi for vi in g.value_info if vi.name in live and vi.name not in graph_outputs]
    del g.value_info[:]
    g.value_info.extend(vis)

    topo_sort(g)
    return removed


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    model = onnx.load(sys.argv[1])
    removed = convert(model)
    onnx.checker.check_model(model, full_check=True)
    tmp = sys.argv[2] + ".part"
    onnx.save(model, tmp)
    import os

    os.replace(tmp, sys.argv[2])
    print(f"fp16to32: {sys.argv[1]} -> {sys.argv[2]}: {removed} Cast nodes removed, "
          f"{len(model.graph.node)} nodes", file=sys.stderr)


if __name__ == "__main__":
    main()
