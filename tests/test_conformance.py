"""qgolden conformance: records made on other CPUs (trimmed copies in tests/data/cpu-records), a
record made on this host, the table, and the exit codes."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qgolden.conformance.check import check_record, compare_outputs
from qgolden.conformance.records import RecordError, load_record, record_cpu_class

RECORDS = Path(__file__).parent / "data" / "cpu-records"
QG = [sys.executable, "-m", "qgolden.cli"]
# (folder, the CPU class its manifest names, the op families qgolden does not lower yet)
# (exactly: a family that becomes supported is removed here, one that stops being supported fails)
NOT_LOWERED = set()  # every recorded op family is lowered
RECORDED = [("xeon-avx512-amx", "avx512_amx", NOT_LOWERED),
            ("xeon-avx512-vnni", "avx512_vnni", NOT_LOWERED),
            ("arm64-neoverse-n1-qemu", "arm64", NOT_LOWERED)]


@pytest.fixture(scope="module")
def reports():
    return {}


def _report(reports, folder, **kw):
    key = (folder, tuple(sorted(kw.items())))
    if key not in reports:
        reports[key] = check_record(load_record(RECORDS / folder), **kw)
    return reports[key]


@pytest.mark.parametrize("folder,isa,unsupported", RECORDED)
def test_recorded_ops_match_on_their_own_class(reports, folder, isa, unsupported):
    """Every supported single-op case of each record equals PyTorch's recorded output bit for bit,
    lowered for the record's own CPU class; the families qgolden does not lower are listed by name."""
    record = load_record(RECORDS / folder)
    assert record.cpu_class_tag() == isa
    rep = _report(reports, folder, engine=None)
    ops = [r for r in rep.results if r.kind == "ops"]
    assert rep.isa == isa
    assert [r.name for r in ops if r.status in ("mismatch", "error", "unreadable")] == []
    checked = [r for r in ops if r.status == "match"]
    if not any(r.status == "skipped" for r in ops):  # a host whose torch lacks an engine skips its cases
        assert len(checked) >= 20 and sum(r.elements for r in checked) > 10000
    listed = set(rep.unsupported())
    assert listed - {"pt2e_model"} == unsupported
    # a family is listed only when some case of it was refused, and no refused case passes
    for fam in listed:
        assert any(r.family == fam and r.status == "unsupported" for r in rep.results)
    families = {r.family for r in ops}
    assert families - listed, "some families must be checked"


@pytest.mark.parametrize("folder", ["xeon-avx512-amx", "xeon-avx512-vnni"])
def test_recorded_inductor_models_match(reports, folder):
    """Every recorded torch.compile model (x86-inductor) equals the compiled model's output bit for bit,
    lowered for the record's own CPU class."""
    rep = _report(reports, folder, engine=None)
    ind = [r for r in rep.results if r.kind == "inductor"]
    assert ind and all(r.status == "match" for r in ind), [(r.name, r.status) for r in ind]


def test_detect_from_trimmed_flag_lists():
    """Manifests keep a subset of cpuinfo's flags; arm64 ones carry no machine."""
    assert record_cpu_class({"flags": ["avx2", "avx512f", "avx512_vnni", "amx_int8"]}) == "avx512_amx"
    assert record_cpu_class({"flags": ["avx2", "avx512f", "avx512_vnni", "amx_int8"],
                             "env": {"ONEDNN_MAX_CPU_ISA": "avx512_core_vnni"}}) == "avx512_vnni"
    assert record_cpu_class({"flags": ["asimd", "fp", "dotprod"]}) == "arm64"
    assert record_cpu_class({"flags": ["avx2", "fma"]}) == "avx2"
    assert record_cpu_class({"flags": ["avx2", "avx512f", "avx512bw", "avx512vl"]}) == "avx512"


def test_compare_outputs_is_bitwise():
    y = np.array([0.0, 1.5, -2.25], dtype=np.float32)
    assert compare_outputs(y.copy(), y)[:2] == (3, 0)
    assert compare_outputs(np.array([-0.0, 1.5, -2.25], dtype=np.float32), y)[:2] == (3, 1)
    assert compare_outputs(np.nextafter(y, np.float32(9)), y)[:2] == (3, 3)
    assert compare_outputs(y.astype(np.float64), y)[1] == 3  # a float64 output is not PyTorch's float32
    assert compare_outputs((y, y), y)[1] == 3


def _cli(*args, timeout=600):
    return subprocess.run(QG + list(args), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def small_copy(tmp_path_factory):
    """A copy of the arm64 record with a few cases: one broken, one matching, one refused, one altered."""
    root = tmp_path_factory.mktemp("rec") / "arm64"
    shutil.copytree(RECORDS / "arm64-neoverse-n1-qemu", root)
    m = json.loads((root / "ops" / "manifest.json").read_text())
    by_op = {c["op"]: c for c in m["cases"]}
    m["cases"] = [by_op["relu"], by_op["add"], by_op["max_pool2d"], by_op["hardswish"]]
    m["cases"].append(_unsupported_case(root / "ops" / "cases", dict(by_op["relu"])))
    (root / "ops" / "manifest.json").write_text(json.dumps(m))
    return root, {c["op"]: c["name"] for c in m["cases"]}


def _unsupported_case(cases, like):
    """A recorded case of an op qgolden has no rule for (flip of a quantized tensor): refused, listed."""
    import torch

    class Flip(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.quant = torch.ao.quantization.QuantStub()
            self.dequant = torch.ao.quantization.DeQuantStub()

        def forward(self, x):
            return self.dequant(torch.flip(self.quant(x), [3]))

    model = Flip().eval()
    model.qconfig = torch.ao.quantization.get_default_qconfig("qnnpack")
    x = torch.randn(1, 3, 4, 5)
    prepared = torch.ao.quantization.prepare(model)
    prepared(x)
    scripted = torch.jit.script(torch.ao.quantization.convert(prepared))
    name = "qnnpack_flip_0_0"
    scripted.save(str(cases / f"{name}.ts.pt"))
    np.savez(cases / f"{name}.npz", x0=x.numpy(), y=scripted(x).numpy())
    return dict(like, name=name, op="flip", inputs=1, params={})


def test_cli_table_and_exit_codes(small_copy, tmp_path):
    root, names = small_copy
    r = _cli("conformance", "check", str(root))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "relu" in r.stdout and "qnnpack" in r.stdout
    assert "flip: aten::flip" in r.stdout  # unsupported, listed by name, not failing
    assert "conforms" in r.stdout

    # one element off in one case: exit 1, counted in the table and the JSON
    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    npz = bad / "ops" / "cases" / f"{names['add']}.npz"
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["y"].reshape(-1)[0] = np.nextafter(arrays["y"].reshape(-1)[0], np.float32(1e9))
    np.savez(npz, **arrays)
    (bad / "ops" / "cases" / f"{names['max_pool2d']}.ts.pt").unlink()
    (bad / "ops" / "cases" / f"{names['hardswish']}.npz").write_bytes(b"not an npz")
    r = _cli("conformance", "check", str(bad), "--json")
    assert r.returncode == 1, r.stderr
    rep = json.loads(r.stdout)
    status = {c["name"]: c["status"] for c in rep["cases"]}
    assert status[names["add"]] == "mismatch"
    assert status[names["max_pool2d"]] == "unreadable" and status[names["hardswish"]] == "unreadable"
    assert status[names["relu"]] == "match" and status[names["flip"]] == "unsupported"
    add_row = next(row for row in rep["table"] if row["family"] == "add")
    assert add_row["mismatching_cases"] == 1 and add_row["mismatching_elements"] == 1
    r = _cli("conformance", "check", str(bad))
    assert r.returncode == 1 and "unreadable" in r.stdout and names["max_pool2d"] in r.stdout

    # filters, a folder that is not a record, an unknown class
    r = _cli("conformance", "check", str(bad), "--op", "relu")
    assert r.returncode == 0, r.stdout + r.stderr
    r = _cli("conformance", "check", str(tmp_path))
    assert r.returncode == 2 and "not a conformance record" in r.stderr
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "manifest.json").write_text(json.dumps({"nodes": []}))
    r = _cli("conformance", "check", str(tmp_path))
    assert r.returncode == 2 and "not a conformance record manifest" in r.stderr
    r = _cli("conformance", "check", str(root), "--isa", "pentium")
    assert r.returncode == 2 and "unknown isa" in r.stderr


def test_load_record_refuses_other_folders(tmp_path):
    with pytest.raises(RecordError):
        load_record(tmp_path)
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "manifest.json").write_text("[1, 2]")
    with pytest.raises(RecordError):
        load_record(tmp_path)


def test_record_then_check_on_this_host(tmp_path):
    """`record` on this host (a few ops, 1 case each, every engine this torch has), then `check` of
    that record with the host's own class: every supported case matches."""
    out = tmp_path / "host"
    ops = ["add", "mul", "conv2d", "linear", "avg_pool2d", "hardswish", "gelu"]
    r = _cli("conformance", "record", str(out), "--seed", "3", "--cases-per-op", "1", "--no-inductor",
             *[a for o in ops for a in ("--op", o)])
    assert r.returncode == 0, r.stdout + r.stderr
    m = json.loads((out / "ops" / "manifest.json").read_text())
    import torch

    from qgolden.cpu import detect

    assert m["qgolden_isa"] == detect() and m["capability"] == torch.backends.cpu.get_cpu_capability()
    assert m["seed"] == 3 and m["flags"] and m["torch"] == torch.__version__
    engines = {c["engine"] for c in m["cases"]}
    assert engines == {e for e in ("x86", "fbgemm", "qnnpack", "onednn")
                       if e in torch.backends.quantized.supported_engines}
    assert len(m["cases"]) + len(m["pytorch_errors"]) == len(ops) * len(engines)
    for c in m["cases"]:
        with np.load(out / "ops" / "cases" / f"{c['name']}.npz") as z:
            assert z["y"].dtype == np.float32 and len([k for k in z.files if k.startswith("x")]) == c["inputs"]
    r = _cli("conformance", "check", str(out), "--json")
    rep = json.loads(r.stdout)
    assert r.returncode == 0, [c for c in rep["cases"] if c["status"] != "match"]
    assert rep["isa"] == detect()
    assert rep["totals"]["match"] == len(m["cases"])
    assert rep["totals"]["mismatching_elements"] == 0 and not rep["unsupported"]
    # the same seed makes the same suite
    again = tmp_path / "again"
    r = _cli("conformance", "record", str(again), "--seed", "3", "--cases-per-op", "1", "--no-inductor",
             "--op", "add", "--engine", "qnnpack")
    assert r.returncode == 0, r.stderr
    name = next(c["name"] for c in m["cases"] if c["op"] == "add" and c["engine"] == "qnnpack")
    with np.load(out / "ops" / "cases" / f"{name}.npz") as a, np.load(again / "ops" / "cases" / f"{name}.npz") as b:
        assert all(np.array_equal(a[k], b[k]) for k in a.files)
    r = _cli("conformance", "record", str(again), "--op", "add")
    assert r.returncode == 2 and "not empty" in r.stderr
