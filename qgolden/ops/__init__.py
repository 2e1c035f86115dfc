"""One file per integer op. Each op is a pure NumPy function

    op(*inputs, **attrs, **consts, profile, trace=None) -> np.ndarray

whose keyword arguments are exactly the node's attrs and consts in the program, so the
engine calls it with no translation. When `trace` is a dict, the op stores its named
intermediates there (accumulator, bias term, multiplier, value before rounding...),
which is what `explain` prints.

The op table: every module here declares `SPECS`, one OpSpec per op it implements
(qgolden/ops/spec.py): its kernel and the facts the engine, the integer-only transform and
explain read. A new op is its own module with its SPECS, and its test.
"""
from __future__ import annotations

import functools
import pkgutil
from importlib import import_module

from .spec import INTEGER_METHODS, OpSpec  # noqa: F401


_TABLE: dict = {}  # the complete table, once built
_building = False


def _declared() -> dict:
    """{op name: (module name, OpSpec)} over every module of this package.

    Importing an op module can import a module that reads the table at import time (mul_int imports
    qgolden.integer, whose transform builds its handler map from it): that inner call sees the modules
    still being imported without their SPECS, so its table is returned but not kept; only the outer,
    complete one is cached."""
    global _building
    if _TABLE:
        return _TABLE
    outer = not _building
    _building = True
    try:
        specs = _collect()
    finally:
        if outer:
            _building = False
    if outer:
        _TABLE.update(specs)
    return specs


def _collect() -> dict:
    specs: dict = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "spec":
            continue
        module = import_module(f"{__name__}.{info.name}")
        for spec in getattr(module, "SPECS", ()):
            if spec.name in specs:
                raise ValueError(f"op {spec.name!r} is declared twice ({specs[spec.name][0]} and {info.name})")
            if not callable(getattr(module, spec.kernel, None)):
                raise ValueError(f"op {spec.name!r}: {info.name} has no function {spec.kernel!r}")
            specs[spec.name] = (info.name, spec)
    return specs


def table() -> dict:
    """{op name: OpSpec}, every op of every module of this package."""
    return {name: spec for name, (_, spec) in _declared().items()}


@functools.lru_cache(maxsize=None)
def get(op: str):
    """The function implementing `op`; KeyError if qgolden has none."""
    module, spec = _declared()[op]
    return getattr(import_module(f"{__name__}.{module}"), spec.kernel)


def spec(op: str) -> OpSpec | None:
    """The OpSpec of `op`, or None for an op qgolden does not know."""
    entry = _declared().get(op)
    return entry[1] if entry else None


def names() -> list:
    return sorted(table())


def where(**facts) -> frozenset:
    """Names of the ops whose OpSpec has every given fact, e.g. where(elementwise=True)."""
    return frozenset(name for name, (_, s) in _declared().items() if all(getattr(s, k) == v for k, v in facts.items()))
