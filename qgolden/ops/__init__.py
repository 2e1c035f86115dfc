"""One file per integer op. Each op is a pure NumPy function

    op(*inputs, **attrs, **consts, profile, trace=None) -> np.ndarray

whose keyword arguments are exactly the node's attrs and consts in the program, so the
engine calls it with no translation. When `trace` is a dict, the op stores its named
intermediates there (accumulator, bias term, multiplier, value before rounding...),
which is what `explain` prints.
"""
