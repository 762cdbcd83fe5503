"""The served weights as one loads them: the networks of a weights folder or Hub repo with the guard
fitted for them (`guard/` beside them), tied to them by fingerprint."""

from __future__ import annotations

import os

from torch import nn

from ..core.weights import GUARD_FOLDER, VariantConfig, load_networks, weights_folder
from . import GuardError, Judge, load


class Pretrained(dict):
    """{variant name: model}, as `load_pretrained` returns them, the guard fitted for them:
    `judge` (the guard with this set's limits) or None, `unjudged` saying why not, and `configs`,
    each loaded variant's config.json as it was read to rebuild it."""

    def __init__(
        self,
        models: dict[str, nn.Module],
        judge: Judge | None,
        unjudged: str,
        configs: dict[str, VariantConfig],
    ):
        super().__init__(models)
        self.judge, self.unjudged, self.configs = judge, unjudged, configs


def load_pretrained(
    source: str | os.PathLike,
    revision: str | None = None,
    errors: dict | None = None,
    networks: str = "ours",
) -> Pretrained:
    """{variant name: model} in registry order, from a folder holding one subfolder per variant,
    or from a Hub repo id ("ORG/NAME", at `revision`) whose files have that layout. `networks`:
    "ours" (the order head) or "report" (the 2020 report's FC head, the `fc/` subfolder). The
    guard beside them (`guard/`) comes with them (`Pretrained.judge`) when it is whole and was
    fitted for these very networks; else `Pretrained.unjudged` says why, and nothing raises.

    With `errors` (a dict), a variant that fails to load is recorded there as {name: message}
    and the others are still returned; without it the first failure raises `WeightsError`.
    A source that can't be found at all always raises `WeightsError`.
    """
    root = weights_folder(source, revision)
    configs: dict[str, VariantConfig] = {}
    models = load_networks(root, networks, errors, configs)
    try:
        judge = Judge.of(load(root / GUARD_FOLDER), networks, models)
    except GuardError as e:
        return Pretrained(models, None, str(e), configs)
    return Pretrained(models, judge, "", configs)
