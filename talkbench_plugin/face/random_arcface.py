"""insightface's recognition network (arcface_torch's IResNet) as an ONNX graph with deterministic random
weights, for tests and benchmarks without the real ``w600k_r50.onnx``.

The graph is the one ``w600k_r50.onnx`` holds: a 112×112 BGR→RGB input normalised outside the graph
(insightface's ArcFaceONNX does ``(x - 127.5) / 127.5``), conv 3×3 + BN + PReLU, four stages of
IBasicBlocks (BN, conv 3×3, BN, PReLU, conv 3×3 with the stage's stride, BN, plus a strided 1×1 conv +
BN shortcut on each stage's first block), BN, flatten, a 25088→512 fully connected layer and a
BatchNorm1d: a 512-d embedding. ``layers=(3, 4, 14, 3)`` is IResNet-50 (w600k_r50); tests use
IResNet-18's ``(2, 2, 2, 2)``: the same blocks, fewer of them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

R50 = (3, 4, 14, 3)
R18 = (2, 2, 2, 2)
_WIDTHS = (64, 128, 256, 512)


def write_random_arcface(path: str | os.PathLike[str], seed: int = 0, layers: tuple[int, ...] = R50) -> Path:
    """Write the IResNet with ``layers`` blocks per stage and random weights to ``path`` (ONNX)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes: list = []
    inits: list = []
    count = [0]

    def name(kind: str) -> str:
        count[0] += 1
        return f"{kind}_{count[0]}"

    def tensor(value: np.ndarray, kind: str) -> str:
        n = name(kind)
        inits.append(numpy_helper.from_array(value.astype(np.float32), n))
        return n

    def conv(x: str, cin: int, cout: int, k: int, stride: int) -> str:
        w = rng.normal(0, np.sqrt(1.0 / (cin * k * k)), (cout, cin, k, k))
        out = name("conv")
        nodes.append(helper.make_node("Conv", [x, tensor(w, "w")], [out], name=name("Conv"), kernel_shape=[k, k],
                                      strides=[stride, stride], pads=[k // 2] * 4))
        return out

    def bn(x: str, c: int) -> str:
        params = [rng.uniform(0.8, 1.2, c), rng.normal(0, 0.05, c), rng.normal(0, 0.05, c), rng.uniform(0.8, 1.2, c)]
        out = name("bn")
        nodes.append(helper.make_node("BatchNormalization", [x, *(tensor(p, "bn") for p in params)], [out],
                                      name=name("BatchNormalization"), epsilon=1e-5))
        return out

    def prelu(x: str, c: int) -> str:
        out = name("prelu")
        slope = np.full((c, 1, 1), 0.25) + rng.normal(0, 0.01, (c, 1, 1))
        nodes.append(helper.make_node("PRelu", [x, tensor(slope, "slope")], [out], name=name("PRelu")))
        return out

    def add(a: str, b: str) -> str:
        out = name("add")
        nodes.append(helper.make_node("Add", [a, b], [out], name=name("Add")))
        return out

    x = prelu(bn(conv("input.1", 3, 64, 3, 1), 64), 64)
    cin = 64
    for width, blocks in zip(_WIDTHS, layers):
        for i in range(blocks):
            stride = 2 if i == 0 else 1
            y = conv(prelu(bn(conv(bn(x, cin), cin, width, 3, 1), width), width), width, width, 3, stride)
            y = bn(y, width)
            shortcut = bn(conv(x, cin, width, 1, stride), width) if i == 0 else x
            x, cin = add(y, shortcut), width
    x = bn(x, 512)
    flat = name("flatten")
    nodes.append(helper.make_node("Flatten", [x], [flat], name=name("Flatten"), axis=1))
    fc = rng.normal(0, np.sqrt(1.0 / (512 * 49)), (512, 512 * 49))
    gemm = name("fc")
    nodes.append(helper.make_node("Gemm", [flat, tensor(fc, "fc_w"), tensor(np.zeros(512), "fc_b")], [gemm],
                                  name=name("Gemm"), transB=1))
    features = bn(gemm, 512)
    graph = helper.make_graph(
        nodes, "iresnet", [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, 112, 112])],
        [helper.make_tensor_value_info(features, TensorProto.FLOAT, ["None", 512])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], producer_name="talkbench")
    model.ir_version = 7
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path
