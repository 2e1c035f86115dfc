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
