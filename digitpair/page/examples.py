"""The page's examples: MNIST test pairs in examples/, whose true digits the page knows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from ..core.checkout import ROOT
from ..core.drawing import preprocess

EXAMPLES_DIR = ROOT / "examples"
# The most a pooled pixel (0-255) of an example may move on its way through a canvas and still be
# that example; a stroke added to a digit moves its pixels by far more.
SAME_EXAMPLE = 8.0


@dataclass(frozen=True)
class Example:
    """A pair in examples/: `pair<k>_first_<digit>.png` and `pair<k>_second_<digit>.png` name
    their digits."""

    first: Path
    second: Path

    @property
    def digits(self) -> tuple[int, int]:
        return tuple(
            int(re.search(r"_(\d)\.png$", p.name).group(1)) for p in (self.first, self.second)
        )

    @property
    def label(self) -> str:
        return "{} and {}".format(*self.digits)

    @cached_property
    def pair(self) -> torch.Tensor:
        """(2, 14, 14): what the networks see of it."""
        return torch.stack([preprocess(str(p)) for p in (self.first, self.second)])


def examples(folder: Path = EXAMPLES_DIR) -> list[Example]:
    firsts = sorted(folder.glob("pair*_first_[0-9].png"))
    return [
        Example(f, next(folder.glob(f.name.split("_first_")[0] + "_second_[0-9].png")))
        for f in firsts
    ]


def known_example(pair: torch.Tensor, known) -> Example | None:
    """The example among `known` whose digits `pair` (2, 14, 14) shows, if any: the page can then
    say the truth. Recognised by what the networks see, not by which event came last: the pads
    report loading an example and clearing a box as drawing."""
    return next((e for e in known if (e.pair - pair).abs().max() <= SAME_EXAMPLE), None)
