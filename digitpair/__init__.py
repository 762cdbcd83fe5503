"""digitpair: is the first of two 14x14 MNIST digits <= the second?

A reproduction and extension of the EPFL EE-559 (2020) mini-project 1 study of weight sharing
and auxiliary losses, packaged as a library, a training CLI and a drawing app.
"""

import importlib

# Each name from the module that defines it, imported on first use (PEP 562): `digitpair-train
# --help` and the CLI's argument errors never wait for torch.
_EXPORTS = {
    "MNIST": "core.data",
    "DataError": "core.data",
    "PairSet": "core.data",
    "VARIANTS": "core.models",
    "PairOutput": "core.models",
    "Prediction": "core.models",
    "build_model": "core.models",
    "RunConfig": "core.config",
    "Metrics": "core.config",
    "train_run": "lab.training",
    "load_pretrained": "guard.pretrained",
    "WeightsError": "core.weights",
}
__all__ = list(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
