"""verifiers: run the runtime a program models on the same inputs and compare every quantized tensor
and every output, exactly. One module per source format:

    pytorch   eager, FX and TorchScript models (PyTorch's quantized engines)
    pt2e      PT2E Q/DQ graphs (torchao reference, Inductor, ExecuTorch XNNPACK)
    onnx      ONNX models (ONNX Runtime's CPU provider, the ONNX reference evaluator)
    report    what every verify returns
"""
from __future__ import annotations

from .report import LayerResult, Report, compare, flatten_outputs


def verify_program(program, inputs) -> Report:
    """Compare `program` (as lowered, keeping its source model) with its runtime on `inputs`."""
    fmt = program.meta.get("format")
    if fmt == "onnx":
        from .onnx import verify_onnx

        return verify_onnx(program, inputs)
    if fmt == "pt2e":
        from .pt2e import verify_pt2e

        return verify_pt2e(program, inputs)
    from .pytorch import verify_pytorch

    return verify_pytorch(program, inputs)


__all__ = ["LayerResult", "Report", "compare", "flatten_outputs", "verify_program"]
