"""Quantized matmul (quantized::matmul) vs PyTorch, bit for bit (np.array_equal on int_repr), under this
host's profile (make_profile(engine)): shapes whose float GEMM order the host's class knows must match,
the others must be refused."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from qgolden.cpu import cpu_class  # noqa: E402
from qgolden.numerics.profile import make_profile  # noqa: E402
from qgolden.ops.matmul import UnsupportedMatmul, matmul  # noqa: E402

ENGINES = [e for e in ("x86", "fbgemm", "qnnpack", "onednn") if e in torch.backends.quantized.supported_engines]


@pytest.fixture(autouse=True)
def _restore_engine():
    saved = torch.backends.quantized.engine
    yield
    torch.backends.quantized.engine = saved


def _run(engine, seed, batch, m, k, n, dtype):
    rng = np.random.default_rng(seed)
    tq = torch.quint8 if dtype == "uint8" else torch.qint8
    lo, hi = (0, 256) if dtype == "uint8" else (-128, 128)
    za, zb = int(rng.integers(lo, hi)), int(rng.integers(lo, hi))
    sa, sb = float(rng.uniform(0.005, 0.1)), float(rng.uniform(0.005, 0.1))
    qa_int = rng.integers(lo, hi, batch + (m, k))
    qb_int = rng.integers(lo, hi, batch + (k, n))
    # an output scale near the typical magnitude, so that many outputs land inside the range
    so = float(sa * sb * np.sqrt(k) * rng.uniform(1.0, 4.0) * 40)
    zo = int(rng.integers(lo, hi))
    qa = torch._make_per_tensor_quantized_tensor(torch.from_numpy(qa_int.astype(np.uint8 if dtype == "uint8" else np.int8)), sa, za)
    qb = torch._make_per_tensor_quantized_tensor(torch.from_numpy(qb_int.astype(np.uint8 if dtype == "uint8" else np.int8)), sb, zb)
    torch.backends.quantized.engine = engine
    ref = torch.ops.quantized.matmul(qa, qb, so, zo).int_repr().numpy()
    ours = lambda: matmul(qa.int_repr().numpy(), qb.int_repr().numpy(), a_scale=sa, a_zero_point=za, b_scale=sb,
                          b_zero_point=zb, out_scale=so, out_zero_point=zo, dtype=dtype, profile=make_profile(engine))
    return ref, ours


SHAPES = [((), 5, 13, 3), ((2,), 7, 10, 21), ((2, 3), 17, 33, 19), ((), 27, 65, 40), ((2,), 39, 295, 38),
          ((), 2, 384, 2), ((), 16, 17, 16), ((3,), 31, 129, 33)]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("i,shape", list(enumerate(SHAPES)))
def test_matmul_bit_exact_or_refused(engine, i, shape):
    batch, m, k, n = shape
    cls = cpu_class(make_profile(engine))
    for dtype in ("uint8", "int8"):
        ref, ours = _run(engine, 100 + i, batch, m, k, n, dtype)
        if cls.float_gemm_is_fma_chain(m, k, n):
            got = ours()
            assert got.dtype == ref.dtype and np.array_equal(got, ref), f"{int((got != ref).sum())} of {ref.size} differ"
        else:
            with pytest.raises(UnsupportedMatmul):
                ours()


@pytest.mark.parametrize("m,k,n", [(1, 20, 8), (8, 20, 1), (4, 5000, 4)])
def test_matmul_refuses_unknown_gemm_orders(m, k, n):
    """gemv shapes (M or N == 1) and K beyond every class's known chain length are refused."""
    ref, ours = _run(ENGINES[0], 7, (), m, k, n, "uint8")
    with pytest.raises(UnsupportedMatmul):
        ours()


def test_matmul_program_matches_torch_through_the_importer():
    """QFunctional.matmul in a scripted eager model lowers to the matmul op and runs bit-exactly."""
    import qgolden
    from qgolden.api import verify
    from qgolden.cpu import cpu_class, detect

    if not cpu_class(detect()).float_gemm_fma_k:
        pytest.skip(f"quantized matmul's float GEMM order is not modelled on this CPU class ({detect()})")

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.qa, self.qb = torch.ao.quantization.QuantStub(), torch.ao.quantization.QuantStub()
            self.f = torch.ao.nn.quantized.FloatFunctional()
            self.dq = torch.ao.quantization.DeQuantStub()

        def forward(self, a, b):
            return self.dq(self.f.matmul(self.qa(a), self.qb(b)))

    engine = ENGINES[0]
    torch.backends.quantized.engine = engine
    m = M().eval()
    m.qconfig = torch.ao.quantization.get_default_qconfig(engine)
    torch.ao.quantization.prepare(m, inplace=True)
    rng = np.random.default_rng(5)
    a, b = (torch.from_numpy(rng.normal(size=s).astype(np.float32)) for s in ((2, 9, 24), (2, 24, 11)))
    m(a, b)
    torch.ao.quantization.convert(m, inplace=True)
    program = qgolden.lower(m, (a, b), engine=engine)
    assert any(node.op == "matmul" for node in program.nodes)
    report = verify(m, a, b, engine=engine, program=program)
    assert report.bit_exact
