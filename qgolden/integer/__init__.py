"""Integer-only programs, certified equal to PyTorch's float32 requantization over every value each
op can receive (docs/integer-only.md).

    to_integer_only(program, multiplier_bits=32, rounding="half_up", acc_bits=None, allow_tables=True)
    certify(program, ...) -> Certificate          (per op: method, domain, mismatches, parameters)
    integer_params(node_or_program)               (M0, n, int bias constants... for explain)
"""
from .certify import Certificate, certify, integer_params, recheck  # noqa: F401
from .transform import INTEGER_OPS, OpCert, convert, to_integer_only  # noqa: F401
