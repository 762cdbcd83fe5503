"""The networks the page serves: two sets of the five variants (core.weights.NETWORKS), ours,
whose pair networks compare with the order head, and the 2020 report's, whose pair networks
compare with its fully connected head. Both are loaded once, at start-up (`load_sets`), each with
the guard fitted for it and what its weights record about themselves (their config.json), and put
in the form the page answers with (`serving`); a request names one (`choose`)."""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
from dataclasses import dataclass, field

import torch

from .. import guard
from ..core.checkout import ROOT
from ..core.models import VARIANTS, Ensemble, PairNet, StackedEnsemble
from ..core.weights import NETWORKS, VariantConfig, WeightsError
from ..guard.pretrained import load_pretrained

WEIGHTS_DIR = ROOT / "weights"
MODEL_REPO_ENV, MODEL_REVISION_ENV = "DIGITPAIR_MODEL_REPO", "DIGITPAIR_MODEL_REVISION"
# The page's choice of set, as it names them; keys are weights.NETWORKS'.
CHOICES = {"ours": "Our networks (order head)", "report": "The 2020 report's networks (FC head)"}
DEFAULT_NETWORKS = "ours"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetworkSet:
    """One set of networks as served: the variants that loaded, the ones that did not and why,
    the guard that judges drawings for them, and each loaded variant's config.json."""

    models: dict[str, PairNet | Ensemble | StackedEnsemble]  # those that loaded, registry order
    missing: dict[str, str]  # {variant: why it did not load}
    source: str  # the folder or Hub repo id it was loaded from
    networks: str = DEFAULT_NETWORKS  # which set: a key of weights.NETWORKS
    judge: guard.Judge | None = None  # the guard fitted for these networks; None: none
    not_judged: str | None = "no guard loaded"  # why drawings are not judged; None where judged
    configs: dict[str, VariantConfig] = field(default_factory=dict)  # {variant: its config.json}

    @property
    def nets(self) -> list[torch.nn.Module]:
        """Every network it serves: the variants', then the guard's where it has one."""
        return [*self.models.values(), *([self.judge.guard.net] if self.judge else [])]


class ChoiceError(ValueError):
    """`/compare` was asked for a set of networks the page does not have."""


def load_set(
    source: str | None = None, revision: str | None = None, networks: str = DEFAULT_NETWORKS
) -> NetworkSet:
    """One set of networks (weights.NETWORKS) from `weights/` by default, from
    $DIGITPAIR_MODEL_REPO when set: a Hub repo id (at $DIGITPAIR_MODEL_REVISION), or a local folder
    of the same layout (`load_pretrained` takes either; a revision applies to Hub repos only).

    Never raises for bad weights: a variant that fails is recorded in `missing`, logged (the
    server's log names it at start-up), and the page and `/compare` say so; so does a guard that
    is missing, damaged or fitted for other networks (drawings are then not judged).
    """
    if source is None and os.environ.get(MODEL_REPO_ENV):
        source = os.environ[MODEL_REPO_ENV]
        revision = revision or os.environ.get(MODEL_REVISION_ENV) or None
    source = str(source or WEIGHTS_DIR)
    missing: dict[str, str] = {}
    try:
        models = load_pretrained(source, revision, errors=missing, networks=networks)
        judge, not_judged, configs = models.judge, models.unjudged or None, models.configs
    except WeightsError as e:  # the whole source is missing, or the Hub repo can't be resolved
        models, missing = {}, {name: str(e) for name in VARIANTS}
        judge, not_judged, configs = None, str(e), {}
    for name, why in missing.items():
        log.warning("digitpair: variant %s not loaded (%s networks): %s", name, networks, why)
    if judge is None and models:
        log.warning(
            "digitpair: drawings are not judged for the %s networks: %s", networks, not_judged
        )
    return NetworkSet(dict(models), missing, source, networks, judge, not_judged, configs)


def serving(loaded: NetworkSet) -> NetworkSet:
    """A set as the page answers with it, the loaded one left as it is: each ensemble's members
    stacked into one network (models.StackedEnsemble), the guard's readers too
    (guard.StackedReaders), and every weight in channels-last, in which oneDNN's convolutions
    and max-pooling run faster on a CPU, as they train the networks faster (lab/training.py).
    A request then takes about half the time (`python benchmarks/serving.py`); the
    answers move in float32's last bits only."""

    def served(net: torch.nn.Module) -> torch.nn.Module:
        stacked = StackedEnsemble(net) if isinstance(net, Ensemble) else copy.deepcopy(net)
        return stacked.to(memory_format=torch.channels_last)

    judge = loaded.judge
    if judge is not None:
        net = served(guard.StackedReaders(judge.guard.net))
        judge = dataclasses.replace(judge, guard=dataclasses.replace(judge.guard, net=net))
    models = {name: served(model) for name, model in loaded.models.items()}
    return dataclasses.replace(loaded, models=models, judge=judge)


def load_sets(source: str | None = None, revision: str | None = None) -> dict[str, NetworkSet]:
    """Both sets as the page serves them (`serving`), {"ours": ..., "report": ...}: a set whose
    folder is missing or broken only has its variants in `missing`; the other still serves."""
    return {networks: serving(load_set(source, revision, networks)) for networks in NETWORKS}


def choose(sets: dict[str, NetworkSet], networks) -> NetworkSet:
    """The set `networks` names; anything else is a `ChoiceError` listing the choices."""
    if not (isinstance(networks, str) and networks in sets):
        raise ChoiceError(
            f"networks={networks!r} is not a set of networks here; choose one of "
            + ", ".join(f"{key!r} ({CHOICES[key]})" for key in sets)
        )
    return sets[networks]
