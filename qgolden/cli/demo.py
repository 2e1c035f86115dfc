"""`qgolden demo` (`make demo`): the forum model lowered, run and verified, with the numbers the
thread asked for."""
from __future__ import annotations

from typing import Optional

import typer

from .common import EngineOpt, IsaOpt, app, out, run_guarded
from .verify import print_report


@app.command()
def demo(engine: Optional[str] = EngineOpt, isa: Optional[str] = IsaOpt):
    """The forum model (qgolden/examples/forum.py): lower, run, verify."""
    def go():
        return run_demo(out, engine=engine, isa=isa)
    ok = run_guarded(go)
    raise typer.Exit(0 if ok else 1)


def run_demo(console, engine=None, isa=None) -> bool:
    import torch

    from ..api import lower, verify
    from ..numerics.profile import gemm_saturates
    from ..examples import forum
    from ..torch_side import engine as engine_ctx

    engine = engine or "x86"
    with engine_ctx(engine):
        model = forum.build()
        x = torch.from_numpy(forum.INPUTS)
        prog = lower(model, example_inputs=(x,), engine=engine, isa=isa)
        console.print("[bold]The forum model[/] (2 -> 3 -> 7 MLP, FX graph mode), lowered to an integer program:")
        console.print(prog.summary(), highlight=False)
        console.print("\n[bold]Explained for the fifth input, x = [0, 0.9][/] (`qgolden explain ... --sample 4`):\n")
        from ..explain import build_document, run_traced
        from ..explain.render_text import print_doc

        trace, tenv = run_traced(prog, [forum.INPUTS])
        print_doc(build_document(prog, trace, tenv, sample=4,
                                 state_dict_keys=list(model.state_dict().keys())), console)
        _, env = prog.run(forum.INPUTS, keep=True)
        hidden, logits = env["input_layer"], env["out"]
        y = prog.run(forum.INPUTS)
        console.print("\nRun with NumPy on the thread's seven inputs:")
        for i, row in enumerate(forum.INPUTS):
            shown = "[" + ", ".join(f"{v:g}" for v in row) + "]"  # as the thread writes them
            console.print(f"  x={shown:<10} x_q={env['quantize_per_tensor'][i].tolist()!s:<11} "
                          f"hidden={hidden[i].tolist()!s:<14} out={logits[i].tolist()}  argmax={int(y[i].argmax())}",
                          highlight=False)
        console.print(f"argmax: {y.argmax(-1).tolist()}  (the seventh input ties: 247 at classes 1 and 6)")
        rep = verify(model, x, program=prog)
        console.print()
        print_report(rep, console)
        if gemm_saturates(prog.profile):
            other = lower(model, example_inputs=(x,), engine=engine, isa="avx512_vnni")
            yv = other.run(forum.INPUTS)
            _, envv = other.run(forum.INPUTS, keep=True)
            console.print(
                f"\nThis machine is {prog.profile['isa']}: FBGEMM sums pairs of u8*s8 products in int16 with "
                "saturation. For x=[1,1], hidden unit 2 has 255*-56 + 255*-128 = -46920, saturated to -32768, "
                f"so hidden = {hidden[0].tolist()} here. On an AVX512-VNNI machine (exact int32) the same model "
                f"gives hidden = {envv['input_layer'][0].tolist()} and argmax {yv.argmax(-1).tolist()}, the "
                "forum's result. `--isa avx512_vnni` builds that machine's golden model here.", highlight=False)
    return rep.bit_exact
