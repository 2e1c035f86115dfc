"""The forum user's model (a PyTorch forum thread), rebuilt from the printed state_dict.

A 2 -> 3 -> 7 MLP (the thread says "6 class" but prints 7 output rows), quantized with
FX graph mode (under the current torch.backends.quantized.engine): quantize(1/255, 0) -> LinearReLU -> Linear -> dequantize.
The weights are the printed float values divided by the printed weight scale (exact
integers); the biases are the printed 4-decimal floats.
"""
from __future__ import annotations

import numpy as np

INPUT_SCALE = 1.0 / 255.0
W1_SCALE = 0.05898105353116989
W1 = [[-2, 2], [-5, -9], [-56, -128]]
B1 = [-0.4747, -0.3563, 7.7603]
H_SCALE, H_ZERO_POINT = 0.0297, 0
W2_SCALE = 0.43650051951408386
W2 = [[1, 1, -127], [1, 0, 3], [1, 0, -32], [1, -1, 10], [1, 1, -7], [1, 0, -3], [1, 0, 7]]
B2 = [19.2761, -1.0785, 14.2602, -22.3171, 10.1059, 7.2197, -11.7253]
OUT_SCALE, OUT_ZERO_POINT = 1.5963, 243

# the thread's seven inputs, one per class
INPUTS = np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0],
                   [0.0, 0.9], [0.0, 0.75], [0.0, 0.25]], dtype=np.float32)


def build():
    """The quantized FX GraphModule, with the thread's scales, zero points, weights and biases."""
    import torch
    from torch import nn
    from torch.ao.quantization import QConfigMapping, get_default_qconfig
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.input_layer = nn.Linear(2, 3)
            self.relu = nn.ReLU()
            self.out = nn.Linear(3, 7)

        def forward(self, x):
            return self.out(self.relu(self.input_layer(x)))

    model = Net().eval()
    qmap = QConfigMapping().set_global(get_default_qconfig(torch.backends.quantized.engine))
    example = torch.from_numpy(INPUTS)
    prepared = prepare_fx(model, qmap, example_inputs=(example,))
    prepared(example)
    q = convert_fx(prepared)

    def qweight(w, scale):
        return torch.quantize_per_tensor(torch.tensor(w, dtype=torch.float32) * scale, scale, 0, torch.qint8)

    q.input_layer_input_scale_0 = torch.tensor(INPUT_SCALE)
    q.input_layer_input_zero_point_0 = torch.tensor(0)
    q.input_layer.set_weight_bias(qweight(W1, W1_SCALE), torch.tensor(B1, dtype=torch.float32))
    q.input_layer.scale, q.input_layer.zero_point = H_SCALE, H_ZERO_POINT
    q.out.set_weight_bias(qweight(W2, W2_SCALE), torch.tensor(B2, dtype=torch.float32))
    q.out.scale, q.out.zero_point = OUT_SCALE, OUT_ZERO_POINT
    return q


def build_onnx():
    """The same model as an ONNX QDQ graph (onnx.ModelProto), the form `quantize_static` writes and ONNX
    Runtime fuses into QGemm: QuantizeLinear(1/255, 0) -> Gemm(DQ(x), DQ(W1), DQ(int32 bias)) -> Relu ->
    QuantizeLinear(H_SCALE, 0) -> Gemm(..W2..) -> QuantizeLinear(OUT_SCALE, 243) -> DequantizeLinear.
    The weights and scales are the thread's; the float biases become int32 with scale s_x * s_w (ONNX's
    convention; PyTorch's kernels add the float bias instead)."""
    from onnx import TensorProto, helper, numpy_helper

    def init(name, value):
        return numpy_helper.from_array(np.asarray(value), name)

    s_x, s_h = np.float32(INPUT_SCALE), np.float32(H_SCALE)
    inits = [init("x_s", s_x), init("x_z", np.uint8(0)), init("h_s", s_h), init("h_z", np.uint8(H_ZERO_POINT)),
             init("y_s", np.float32(OUT_SCALE)), init("y_z", np.uint8(OUT_ZERO_POINT))]
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_s", "x_z"], ["xq"], name="input_quantize"),
             helper.make_node("DequantizeLinear", ["xq", "x_s", "x_z"], ["xf"], name="input_dequantize")]
    layers = [("input_layer", "xf", W1, W1_SCALE, B1, s_x, "h_s", "h_z", True),
              ("out", "hf", W2, W2_SCALE, B2, s_h, "y_s", "y_z", False)]
    for name, src, w, w_s, b, in_s, o_s, o_z, relu in layers:
        w_s = np.float32(w_s)
        b_s = np.float32(in_s * w_s)
        inits += [init(f"{name}.w", np.asarray(w, np.int8)), init(f"{name}.w_s", w_s), init(f"{name}.w_z", np.int8(0)),
                  init(f"{name}.b", np.rint(np.asarray(b, np.float32) / b_s).astype(np.int32)),
                  init(f"{name}.b_s", b_s), init(f"{name}.b_z", np.int32(0))]
        nodes += [helper.make_node("DequantizeLinear", [f"{name}.w", f"{name}.w_s", f"{name}.w_z"], [f"{name}.wf"]),
                  helper.make_node("DequantizeLinear", [f"{name}.b", f"{name}.b_s", f"{name}.b_z"], [f"{name}.bf"]),
                  helper.make_node("Gemm", [src, f"{name}.wf", f"{name}.bf"], [f"{name}.y"], name=name, transB=1)]
        last = f"{name}.y"
        if relu:
            nodes.append(helper.make_node("Relu", [last], [f"{name}.r"], name=f"{name}.relu"))
            last = f"{name}.r"
        out = "hq" if relu else "yq"
        nodes.append(helper.make_node("QuantizeLinear", [last, o_s, o_z], [out], name=f"{name}.quantize"))
        if relu:
            nodes.append(helper.make_node("DequantizeLinear", ["hq", "h_s", "h_z"], ["hf"], name="hidden_dequantize"))
    nodes.append(helper.make_node("DequantizeLinear", ["yq", "y_s", "y_z"], ["y"], name="output_dequantize"))
    graph = helper.make_graph(nodes, "forum", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [7, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [7, 7])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    return model
