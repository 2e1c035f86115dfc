"""A progress bar for long library work (certify, lower --integer-only), on a terminal only.

    with op_progress("certify") as progress:      # progress(done, total, name), or None
        certify(program, progress=progress)

The bar is drawn by rich on stderr, and only when stderr is a terminal: redirected output, pipes
and tests get None (no bar, nothing written), so stdout (JSON, tables) is never touched.
"""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def op_progress(description: str, force: bool | None = None):
    """Yields a callback progress(done, total, name) that advances a rich progress bar, or None
    when stderr is not a terminal (force: True/False overrides the terminal test)."""
    from rich.console import Console

    console = Console(stderr=True)
    if not (console.is_terminal if force is None else force):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[op]}"), console=console, transient=True) as bar:
        task = bar.add_task(description, total=None, op="")

        def progress(done: int, total: int, name: str = "") -> None:
            bar.update(task, completed=done, total=total, op=name)
        yield progress
