"""Corrupted-program campaign: `qgolden run` on damaged `.qgp` files must exit 2 with one line or
run correctly (exit 0, the output written), never exit 3 (a qgolden bug) or hang.

Three kinds of damage, in turn:
  raw     1-4 random bit flips anywhere in the file (the zip's CRCs catch most of them);
  json    1-4 bit flips inside program.json, re-zipped with a valid CRC (reaches the verifier);
  array   1-4 bit flips inside one constant's .npy member, re-zipped (headers, shapes, values).

    python -m qgolden.fuzz_qgp --cases 1000 [--seed 0]      (make fuzz-qgp)
"""
from __future__ import annotations

import argparse
import io
import random
import signal
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

KINDS = ("raw", "json", "array")


def flip_bits(data: bytes, rng: random.Random, lo: int = 0, hi: int | None = None) -> bytes:
    """`data` with 1-4 random bits flipped in [lo, hi)."""
    b = bytearray(data)
    hi = len(b) if hi is None else hi
    if hi <= lo:
        return bytes(b)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(lo, hi)
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def damage_member(data: bytes, rng: random.Random, pick) -> bytes:
    """The .qgp re-zipped with bits flipped in one member chosen by `pick(names)` (CRCs made valid)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = [(i, z.read(i.filename)) for i in z.infolist()]
    target = pick([i.filename for i, _ in members])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for info, body in members:
            if info.filename == target:
                body = flip_bits(body, rng)
            out.writestr(info, body)
    return buf.getvalue()


def corrupt(data: bytes, kind: str, rng: random.Random) -> bytes:
    if kind == "raw":
        return flip_bits(data, rng)
    if kind == "json":
        return damage_member(data, rng, lambda names: "program.json")
    return damage_member(data, rng, lambda names: rng.choice([n for n in names if n != "program.json"]
                                                             or ["program.json"]))


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def run_case(qgp: Path, x: Path, out: Path, timeout: int = 60):
    """(exit code, stderr, stdout) of `qgolden run qgp --input x --output out`, in this process."""
    from typer.testing import CliRunner

    from .cli import app

    old = signal.signal(signal.SIGALRM, _alarm) if hasattr(signal, "SIGALRM") else None
    if old is not None:
        signal.alarm(timeout)
    try:
        r = CliRunner().invoke(app, ["run", str(qgp), "--input", str(x), "--output", str(out)])
    except Hang:
        return None, "hang", ""
    finally:
        if old is not None:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
    return r.exit_code, r.stderr, r.stdout


def verdict(code, stderr, out: Path) -> str | None:
    """None if the case is acceptable, else what went wrong."""
    if code == 2:
        lines = [l for l in stderr.splitlines() if l.strip()]
        return None if len(lines) == 1 and lines[0].startswith("qgolden: error:") else f"exit 2 with {stderr!r}"
    if code == 0:
        try:
            np.load(out, allow_pickle=False)
        except Exception as e:  # the run said it wrote the output
            return f"exit 0 but no readable output ({e})"
        return None
    return f"exit {code}: {stderr.strip()[:300]}"


def campaign(programs, cases: int, seed: int = 0, log=None) -> dict:
    """Run `cases` corrupted variants of `programs` ([(qgp bytes, input array)]); counts per outcome
    and the failures [(case, kind, what)]."""
    rng = random.Random(seed)
    counts = {"exit 2": 0, "ran": 0, "failed": 0}
    failures = []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        xs = []
        for i, (_, x) in enumerate(programs):
            np.save(d / f"x{i}.npy", x)
            xs.append(d / f"x{i}.npy")
        for case in range(cases):
            k = case % len(programs)
            kind = KINDS[case % len(KINDS)]
            qgp, out = d / f"case{case}.qgp", d / f"y{case}.npy"
            qgp.write_bytes(corrupt(programs[k][0], kind, rng))
            code, stderr, _ = run_case(qgp, xs[k], out)
            bad = verdict(code, stderr, out)
            if bad:
                counts["failed"] += 1
                failures.append((case, kind, bad))
                keep = Path("fuzz-qgp-failures")
                keep.mkdir(exist_ok=True)
                (keep / f"case{case}.qgp").write_bytes(qgp.read_bytes())
                if log:
                    log(f"case {case} ({kind}): {bad}")
            else:
                counts["ran" if code == 0 else "exit 2"] += 1
            qgp.unlink()
            if out.exists():
                out.unlink()
    return {"counts": counts, "failures": failures}


def base_programs() -> list:
    """[(.qgp bytes, input)] of the forum MLP, its integer-only form and a random CNN."""
    from . import api, fuzz
    from .examples import forum
    from .integer import to_integer_only

    here = Path(forum.__file__)
    p = api.lower(f"{here}:build", (forum.INPUTS,), engine="x86")
    q, xs, _, eng = fuzz.random_case(3, engine="fbgemm", mode="fx")
    c = api.lower(q, tuple(xs), engine=eng)
    out = []
    with tempfile.TemporaryDirectory() as d:
        for i, (prog, x) in enumerate(((p, forum.INPUTS), (to_integer_only(p), forum.INPUTS), (c, xs[0]))):
            f = Path(d) / f"p{i}.qgp"
            prog.save(f)
            out.append((f.read_bytes(), np.asarray(x, np.float32)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore")
    r = campaign(base_programs(), a.cases, a.seed, log=print)
    c = r["counts"]
    print(f"{a.cases} corrupted programs: {c['exit 2']} refused (exit 2, one line), {c['ran']} ran, "
          f"{c['failed']} failed")
    return 1 if c["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
