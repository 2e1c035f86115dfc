"""Quantized softmax and the quantized mean off its fast path, bit for bit against live torch on this
host's profile (every engine), plus the float pieces they stand on: ATen's float sum in TensorIterator
order and SLEEF's expf. Random stored values with fixed seeds, lengths around the vector widths,
channels-last and permuted inputs, every dim."""
import warnings
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from qgolden.numerics.floatsum import aten_sum  # noqa: E402
from qgolden.numerics.profile import aten_float_lanes, make_profile  # noqa: E402
from qgolden.ops.mean import mean  # noqa: E402
from qgolden.ops.softmax import QNNPACK_OUT_SCALE, softmax  # noqa: E402

warnings.filterwarnings("ignore")
RANGE = {"uint8": (0, 255), "int8": (-128, 127)}
NPD = {"uint8": np.uint8, "int8": np.int8}
TQD = {"uint8": torch.quint8, "int8": torch.qint8}


def seed(key) -> int:
    return zlib.crc32(repr(key).encode())


def mkq(q, s, z, order=None):
    t = torch._make_per_tensor_quantized_tensor(torch.from_numpy(np.ascontiguousarray(q)), s, z)
    if order is not None:  # same values, memory laid out in `order` (outermost first)
        inv = np.argsort(order).tolist()
        t = t.permute(*order).contiguous().permute(*inv)
    return t


def host_float_profile():
    prof = make_profile("x86")
    prof["num_threads"] = torch.get_num_threads()
    return prof


@pytest.mark.parametrize("case", range(60))
def test_float_sum_matches_torch(case):
    """numerics.floatsum.aten_sum == torch.sum on float32 tensors of any layout and reduced dims."""
    rng = np.random.default_rng(seed(("sum", case)))
    nd = int(rng.integers(1, 5))
    shape = tuple(int(s) for s in rng.integers(1, 20, nd))
    dims = sorted(rng.choice(nd, int(rng.integers(1, nd + 1)), replace=False).tolist())
    x = (rng.integers(-128, 128, shape) * np.float32(rng.uniform(0.001, 0.1))).astype(np.float32)
    order = rng.permutation(nd).tolist() if nd > 1 and case % 2 else None
    t = torch.from_numpy(x)
    if order is not None:
        t = t.permute(*order).contiguous().permute(*np.argsort(order).tolist())
    prof = host_float_profile()
    with torch.no_grad():
        ref = torch.sum(t, dims).numpy()
    ours = aten_sum(x, dims, order, aten_float_lanes(prof, "sum"), 1 if x.size < 32768 else prof["num_threads"])
    assert np.array_equal(ours.view(np.int32), ref.view(np.int32))


MEAN_CASES = [((2, 37, 5, 7), [1], False), ((3, 16, 9, 11), [1], True), ((1, 33, 4, 4), [0, 1], False),
              ((2, 8, 17, 3), [1, 2], False), ((4, 24, 6, 5), [2], True), ((5, 19, 13), [0], False),
              ((2, 40, 7, 7), [2, 3], True), ((3, 9, 31), [1], True), ((6, 65), [0], False)]


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("shape,dims,channels_last", MEAN_CASES)
def test_mean_matches_torch(engine, shape, dims, channels_last, dtype):
    if dtype == "int8" and engine["engine"] == "qnnpack" and dims == [2, 3]:
        pytest.skip("QNNPACK's global pool takes quint8 only (ATen routes qint8 elsewhere: covered by x86)")
    rng = np.random.default_rng(seed(("mean", shape, dims, channels_last, dtype, engine["engine"])))
    lo, hi = RANGE[dtype]
    q = rng.integers(lo, hi + 1, shape).astype(NPD[dtype])
    s, z = float(rng.uniform(0.01, 0.2)), int(rng.integers(lo + 20, hi - 20))
    order = [0] + list(range(2, len(shape))) + [1] if channels_last else None
    t = mkq(q, s, z, order) if dtype == "uint8" else torch._make_per_tensor_quantized_tensor(
        torch.from_numpy(q), s, z)
    if dtype == "int8" and channels_last:
        t = t.permute(*order).contiguous().permute(*np.argsort(order).tolist())
    for keepdim in (False, True):
        ref = torch.mean(t, dims, keepdim=keepdim).int_repr().numpy()
        ours = mean(q, x_scale=s, x_zero_point=z, dim=dims, keepdim=keepdim, profile=engine,
                    channels_last=channels_last)
        assert ours.shape == ref.shape and np.array_equal(ours, ref)


SOFTMAX_SHAPES = [((3, 17), -1), ((2, 5, 33), -1), ((4, 7), 0), ((2, 9, 21), 1), ((3, 6, 5, 19), 1),
                  ((2, 3, 40), 1), ((1, 16), -1), ((5, 3), -1), ((2, 4, 6, 7), 2), ((40,), 0), ((2, 31, 18), 0)]


@pytest.mark.parametrize("fixed_out", [False, True])
@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("shape,dim", SOFTMAX_SHAPES)
def test_softmax_matches_torch(engine, shape, dim, dtype, fixed_out):
    """quantized::softmax: QNNPACK's table kernel (qnnpack, quint8, output 1/256 and 0) or the float path."""
    rng = np.random.default_rng(seed(("softmax", shape, dim, dtype, fixed_out, engine["engine"])))
    lo, hi = RANGE[dtype]
    q = rng.integers(lo, hi + 1, shape).astype(NPD[dtype])
    s, z = float(rng.uniform(0.005, 0.3)), int(rng.integers(lo + 20, hi - 20))
    os_, oz = (QNNPACK_OUT_SCALE, 0 if dtype == "uint8" else -128) if fixed_out else \
        (float(rng.uniform(0.002, 0.01)), int(rng.integers(lo, lo + 40)))
    t = torch._make_per_tensor_quantized_tensor(torch.from_numpy(q), s, z)
    ref = torch.ops.quantized.softmax(t, dim, os_, oz).int_repr().numpy()
    trace = {}
    ours = softmax(q, x_scale=s, x_zero_point=z, dim=dim, out_scale=os_, out_zero_point=oz, dtype=dtype,
                   profile=engine, trace=trace)
    assert np.array_equal(ours, ref)
    qnnpack = engine["engine"] == "qnnpack" and dtype == "uint8" and fixed_out
    assert trace["kernel"] == ("qnnpack_softargmax" if qnnpack else "aten_softmax_float")


def test_softmax_threads_split_the_inner_positions():
    """_vec_softmax hands each thread its own chunk of the outer x inner positions: a vector group never
    straddles a chunk's end, so the thread count changes which positions take the scalar libm path."""
    from qgolden.ops.softmax import softmax_inner

    x = np.random.default_rng(3).normal(size=(3, 5, 10)).astype(np.float32)
    _, one = softmax_inner(x, 1, 8, 1)
    _, two = softmax_inner(x, 1, 8, 2)
    row = [True] * 8 + [False] * 2
    assert one.reshape(-1).tolist() == row * 3
    # two chunks of 15 positions: the second row's vector group would cross position 15
    assert two.reshape(-1).tolist() == row + [False] * 5 + [False] * 5 + row


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_mean_of_a_conv1d_output(engine, dtype):
    """A quantized conv1d's output is a 2-D conv's channels-last output squeezed: 3-D with channels
    innermost in memory. mean takes the float path (not NCL-contiguous), and `dequantize()` makes a
    contiguous float tensor (suggest_memory_format is channels-last for 4-D/5-D only), so the float
    sum runs in NCL order; summing in the quantized tensor's memory order was off by one step."""
    rng = np.random.default_rng(seed(("mean conv1d", dtype, engine["engine"])))
    lo, hi = RANGE[dtype]
    checked = 0
    for _ in range(40):
        shape = (int(rng.integers(1, 4)), int(rng.integers(2, 20)), int(rng.integers(2, 40)))
        q = rng.integers(lo, hi + 1, shape).astype(NPD[dtype])
        s, z = float(rng.uniform(0.01, 0.2)), int(rng.integers(lo, hi + 1))
        t = torch._make_per_tensor_quantized_tensor(torch.from_numpy(q), s, z)
        t = t.unsqueeze(2).contiguous(memory_format=torch.channels_last).squeeze(2)
        assert t.stride()[1] == 1
        for dims in ([2], [1], [1, 2], [0, 2]):
            for keepdim in (False, True):
                ref = torch.mean(t, dims, keepdim=keepdim).int_repr().numpy()
                ours = mean(q, x_scale=s, x_zero_point=z, dim=dims, keepdim=keepdim, profile=engine, channels_last=True)
                assert ours.shape == ref.shape and np.array_equal(ours, ref), (shape, dims, keepdim)
                checked += ref.size
    assert checked > 1000
