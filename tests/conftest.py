import os
from pathlib import Path

import pytest

from digitpair.data import MNIST, DataError, synthetic_mnist

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist() -> MNIST:
    """Real MNIST from $DIGITPAIR_DATA (CI sets it to ../shared/data/mnist), else that shared copy."""
    root = os.environ.get("DIGITPAIR_DATA") or (SHARED if SHARED.is_dir() else None)
    try:
        return MNIST(root, download=False)
    except DataError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"real MNIST not available: {e}")


@pytest.fixture(scope="session")
def tiny() -> MNIST:
    return synthetic_mnist()
