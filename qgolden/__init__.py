"""qgolden: bit-exact integer programs from quantized PyTorch models."""
from .errors import UserError
from .ir import Program, ProgramError, load

__version__ = "0.1.0"


def lower(model_or_path, example_inputs=None, engine=None, isa=None, trust_pickle=False, trust_code=False):
    from .api import lower as _lower

    return _lower(model_or_path, example_inputs=example_inputs, engine=engine, isa=isa, trust_pickle=trust_pickle,
                  trust_code=trust_code)


def verify(model, *inputs, engine=None, isa=None, trust_pickle=False, trust_code=False):
    from .api import verify as _verify

    return _verify(model, *inputs, engine=engine, isa=isa, trust_pickle=trust_pickle, trust_code=trust_code)


__all__ = ["Program", "ProgramError", "UserError", "load", "lower", "verify", "__version__"]
