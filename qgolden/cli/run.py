"""`qgolden run MODEL --input X --output Y`: the integer program on NumPy, for one input file,
in batches of a large one, or over a directory of them."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer

from ..files import OutputDir, npy_bytes, npz_bytes, refuse_inputs
from ..progress import step_progress
from .common import (EngineOpt, IsaOpt, OrtOpt, TrustOpt, UserError, app, get_program, load_inputs, out,
                     run_guarded, save_outputs)


def batches(xs: list, batch: int) -> list:
    """The inputs cut into consecutive slices of `batch` samples along axis 0 (all inputs alike)."""
    n = int(np.shape(xs[0])[0]) if np.ndim(xs[0]) else 1
    if any(np.ndim(x) == 0 or np.shape(x)[0] != n for x in xs):
        raise UserError(f"--batch {batch}: every input needs the same first (batch) dimension, got "
                        + ", ".join(str(tuple(np.shape(x))) for x in xs))
    return [[x[i:i + batch] for x in xs] for i in range(0, n, batch)]


def join(ys: list):
    """The outputs of consecutive batches as one (concatenated along axis 0, output by output)."""
    if isinstance(ys[0], tuple):
        return tuple(np.concatenate([y[k] for y in ys]) for k in range(len(ys[0])))
    return np.concatenate(ys)


def run_batched(prog, xs: list, batch: int, how: str, label: str = ""):
    """prog on xs, `batch` samples at a time (0: all at once), with a progress bar on a terminal."""
    if not batch:
        return prog.run(*xs, accumulate=how)
    parts = batches(xs, batch)
    ys = []
    with step_progress(len(parts), f"run {label}".strip()) as advance:
        for part in parts:
            ys.append(prog.run(*part, accumulate=how))
            advance()
    return join(ys)


def input_files(directory: Path) -> list:
    """The .npy and .npz files of a directory, sorted by name (an .npz holds one call's inputs)."""
    files = sorted(p for p in directory.iterdir() if p.suffix in (".npy", ".npz") and p.is_file())
    if not files:
        raise UserError(f"{directory}: no .npy or .npz input files in this directory")
    stems = [p.stem for p in files]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise UserError(f"{directory}: {twice[0]}.npy and {twice[0]}.npz would give the same output file name")
    return files


def shapes_text(y) -> str:
    return ", ".join(f"{np.asarray(v).dtype}{list(np.shape(v))}" for v in (y if isinstance(y, tuple) else (y,)))


@app.command()
def run(model: str = typer.Argument(..., help="a .qgp program, or a model to lower first"),
        input: str = typer.Option(..., "--input", help="X.npy, X.npz with several inputs in order, or a directory "
                                  "of them (each file one call)"),
        output: str = typer.Option(..., "--output", help="where to write Y.npy (Y.npz for several outputs); a "
                                   "directory when --input is one (same file names)"),
        engine: Optional[str] = EngineOpt, isa: Optional[str] = IsaOpt, trust_pickle: bool = TrustOpt,
        ort_opt_level: str = OrtOpt,
        batch: int = typer.Option(0, "--batch", help="run N samples at a time (first dimension of every input) and "
                                  "join the outputs; each batch's integers are what the runtime gives for a batch "
                                  "of that size (default: the whole file at once)"),
        force: bool = typer.Option(False, "--force", help="with a directory: write into a non-empty --output, "
                                   "replacing only files qgolden wrote there"),
        accumulate: str = typer.Option("auto", "--accumulate",
                                       help="auto | numpy | torch: who computes the exact linear/conv sums "
                                            "(same integers; auto = torch when a model is given, NumPy for a "
                                            ".qgp, which then runs without torch)")):
    """Run the integer program with NumPy and save what the model's forward returns."""
    def go():
        if accumulate not in ("auto", "numpy", "torch"):
            raise UserError(f"--accumulate {accumulate!r}: choose auto, numpy or torch")
        if batch < 0:
            raise UserError(f"--batch {batch}: give a positive number of samples (or 0 for all at once)")
        refuse_inputs(output, [model, input], "--output")
        source = Path(input)
        if source.is_dir():
            files = input_files(source)
            target = OutputDir(output, force, "--output")
            prog = get_program(model, engine, isa, trust_pickle, ort_opt_level=ort_opt_level)
            how = accumulate if accumulate != "auto" else ("numpy" if getattr(prog, "origin", None) else "torch")
            with step_progress(len(files), "run") as advance:
                for f in files:
                    y = run_batched(prog, load_inputs(str(f)), batch, how)
                    name = f.stem + (".npz" if isinstance(y, tuple) else ".npy")
                    target.plan([name])
                    target.write(name, npz_bytes({f"arr_{i}": v for i, v in enumerate(y)})
                                 if isinstance(y, tuple) else npy_bytes(y))
                    advance(f.name)
            target.finish()
            out.print(f"wrote {len(files)} output files to {output}")
            return
        xs = load_inputs(input)
        prog = get_program(model, engine, isa, trust_pickle, ort_opt_level=ort_opt_level)
        how = accumulate if accumulate != "auto" else ("numpy" if getattr(prog, "origin", None) else "torch")
        y = run_batched(prog, xs, batch, how, Path(input).name)
        save_outputs(output, y)
        out.print(f"wrote {output}: {shapes_text(y)}")
    run_guarded(go)
