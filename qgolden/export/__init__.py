"""Export of a certified integer-only program: C99 source with no floating point (c.py), a
static activation arena (arena.py), golden vectors and RTL memory files (vectors.py, memfiles.py),
and a ctypes binding on the compiled C (binding.py)."""
from .plan import ExportError  # noqa: F401
