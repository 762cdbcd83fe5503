"""digitpair: is the first of two 14x14 MNIST digits <= the second?

A reproduction and extension of the EPFL EE-559 (2020) mini-project 1 study of weight sharing
and auxiliary losses, packaged as a library, a training CLI and a drawing app.
"""

from .data import MNIST, DataError, PairSet
from .weights import WeightsError, load_pretrained
from .models import VARIANTS, PairOutput, Prediction, build_model
from .training import RunConfig, train_run

__all__ = ["MNIST", "DataError", "PairSet", "VARIANTS", "PairOutput", "Prediction", "build_model",
           "RunConfig", "train_run", "load_pretrained", "WeightsError"]
__version__ = "0.1.0"
