"""Progress bars for long work, on a terminal only.

    with op_progress("certify") as progress:      # progress(done, total, name), or None
        certify(program, progress=progress)
    with step_progress(len(files), "run") as advance:   # advance(label) after each step
        ...

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
    with bar(console) as progress_bar:
        task = progress_bar.add_task(description, total=None, label="")

        def progress(done: int, total: int, name: str = "") -> None:
            progress_bar.update(task, completed=done, total=total, label=name)
        yield progress


@contextlib.contextmanager
def step_progress(total: int, description: str):
    """Yields advance(label) that moves a bar of `total` steps on stderr when it is a terminal, and
    does nothing otherwise."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal or total == 0:
        yield lambda label="": None
        return
    with bar(console) as progress_bar:
        task = progress_bar.add_task(description, total=total, label="")
        yield lambda label="": progress_bar.update(task, advance=1, label=label)


def bar(console):
    """The one bar style: description, bar, done/total, elapsed, what is being done (`label`)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("{task.fields[label]}"), console=console, transient=True)
