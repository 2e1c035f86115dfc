"""qgolden: bit-exact integer programs from quantized PyTorch models."""
from .ir import Program, ProgramError, load

__version__ = "0.1.0"


def lower(model_or_path, example_inputs=None, engine=None, isa=None, trust_pickle=False):
    from .api import lower as _lower

    return _lower(model_or_path, example_inputs=example_inputs, engine=engine, isa=isa, trust_pickle=trust_pickle)


def verify(model, *inputs, engine=None, isa=None, trust_pickle=False):
    from .api import verify as _verify

    return _verify(model, *inputs, engine=engine, isa=isa, trust_pickle=trust_pickle)


__all__ = ["Program", "ProgramError", "load", "lower", "verify", "__version__"]
