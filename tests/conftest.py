import os
import warnings

import numpy as np
import pytest

warnings.filterwarnings("ignore")


@pytest.fixture
def engine_ctx():
    from qgolden.torch_side import engine

    return engine


@pytest.fixture(scope="session")
def forum_model():
    from qgolden.examples import forum
    from qgolden.torch_side import engine

    with engine("x86"):
        return forum.build()


def _quantized_engines():
    import torch

    return [e for e in ("x86", "fbgemm", "qnnpack", "onednn") if e in torch.backends.quantized.supported_engines]


@pytest.fixture(params=_quantized_engines())
def engine(request):
    """Each quantized engine this torch has, selected for the test: its host profile (torch's threads)."""
    import torch

    from qgolden.numerics.profile import make_profile

    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = request.param
    prof = make_profile(request.param)
    prof["num_threads"] = torch.get_num_threads()
    yield prof
    torch.backends.quantized.engine = old
