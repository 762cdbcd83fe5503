"""When to doubt the networks' digits: "this does not look like a digit", "not sure: reads 1 or 7".

The networks were trained on MNIST digits only, and a softmax gives every drawing some digit,
often with a high probability: a dot, scaled into the 20 px box like any drawing, is a filled
disc that reads "0" at 99 %. Four pieces of evidence about one drawing, each cheap (no extra
network pass: the readings are the ones the page shows):

- confidence: the largest probability of the readers' mean digit distribution (the readers: the
  set's networks with digit outputs, each ensemble already averaged); low when they read a flat
  distribution or disagree about the digit. `pair_share`: what its two likeliest digits hold.
- solid: the share of the 14x14 image that is solid ink (>= SOLID_LEVEL): a dot, a blob or a
  coloured-in patch fills the box; a pen stroke scaled to 20 px does not.
- pieces: separate 8-connected pieces of ink (> PIECE_LEVEL): scattered dots, not a digit's one
  or two strokes.
- unexplained: the squared distance (0-1 pixels) from the image to the span of the training
  digits' main shapes (their first principal components, `Shapes`): a letter or a scribble is
  far from every mix of digit shapes that a badly written digit is close to.

A drawing is "not a digit" when solid, pieces or unexplained is over its limit, or when the
readers' confidence is under its limit and no two digits share most of it; "unsure" (two
candidates named) when the confidence is under its limit and two digits hold `min_pair_share`
of it. The limits and the shapes are chosen on validation digits by benchmarks/not_a_digit.py
(one command; it writes them with their measured rates to benchmarks/not_a_digit.json, which
`load_rules` reads), for the networks whose fingerprints the file records: another set of
networks is not judged (`rule_for`), since its confidences are not the ones the limits were
chosen on.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

RULES_FILE = Path(__file__).resolve().parents[1] / "benchmarks" / "not_a_digit.json"
SOLID_LEVEL, PIECE_LEVEL = 128, 64   # of 255: solid ink; any ink that joins two strokes
DIGIT, UNSURE, NOT_A_DIGIT = "digit", "unsure", "not a digit"
# %: real digits flagged at most, non-digits caught at least; the rule benchmarks/not_a_digit.py
# chooses meets both, and the About panel quotes them beside the measured rates.
GOALS = {"flagged": 1.0, "caught": 95.0}


@dataclass(frozen=True)
class Shapes:
    """The training digits' mean (196,) and main shapes (k, 196), on pixels scaled to 0-1."""
    mean: np.ndarray
    components: np.ndarray

    @classmethod
    def fit(cls, digits: torch.Tensor, k: int) -> Shapes:
        """(N, 14, 14) raw 0-255 digits -> their mean and first k principal components. Each
        component's sign is fixed (largest entry positive), so a refit gives the same numbers."""
        x = digits.reshape(len(digits), -1).double().numpy() / 255
        mean = x.mean(0)
        components = np.linalg.svd(x - mean, full_matrices=False)[2][:k]
        signs = np.sign(components[np.arange(k), np.abs(components).argmax(1)])
        return cls(mean, components * signs[:, None])

    def unexplained(self, digits: torch.Tensor) -> np.ndarray:
        """(N, 14, 14) raw 0-255 -> (N,) squared distance to the mean + span of the components."""
        x = digits.reshape(len(digits), -1).double().numpy() / 255 - self.mean
        return ((x - (x @ self.components.T) @ self.components) ** 2).sum(1)


@dataclass(frozen=True)
class Rule:
    """The limits (benchmarks/not_a_digit.py chooses them) and the shapes they were chosen with."""
    min_confidence: float
    min_pair_share: float
    max_solid: float
    max_pieces: int
    max_unexplained: float
    shapes: Shapes


@dataclass(frozen=True)
class Evidence:
    """Per drawing, (N,) arrays; `digits` (N, 2): the readers' two likeliest digits, likeliest first."""
    confidence: np.ndarray
    pair_share: np.ndarray
    solid: np.ndarray
    pieces: np.ndarray
    unexplained: np.ndarray
    digits: np.ndarray


def count_pieces(ink: np.ndarray) -> np.ndarray:
    """(N, H, W) bool -> (N,) number of 8-connected pieces: each ink pixel takes the smallest
    label around it until none changes."""
    n, h, w = ink.shape
    none = h * w
    label = np.where(ink, np.arange(h * w).reshape(1, h, w), none)
    while True:
        padded = np.pad(label, ((0, 0), (1, 1), (1, 1)), constant_values=none)
        around = np.min([padded[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], 0)
        new = np.where(ink, around, none)
        if (new == label).all():
            return np.array([np.unique(image[image < none]).size for image in label])
        label = new


def evidence(digits: torch.Tensor, readings: torch.Tensor, shapes: Shapes) -> Evidence:
    """(N, 14, 14) raw 0-255 drawings as the networks see them, and (N, r, 10) the r readers'
    digit distributions of each."""
    mean = readings.double().mean(1).numpy()                           # (N, 10)
    order = np.argsort(-mean, 1, kind="stable")[:, :2]
    top = np.take_along_axis(mean, order, 1)
    pixels = digits.numpy()
    return Evidence(confidence=top[:, 0], pair_share=top.sum(1),
                    solid=(pixels >= SOLID_LEVEL).mean((1, 2)), pieces=count_pieces(pixels > PIECE_LEVEL),
                    unexplained=shapes.unexplained(digits), digits=order)


def judge(rule: Rule, ev: Evidence) -> np.ndarray:
    """(N,) of DIGIT, UNSURE or NOT_A_DIGIT."""
    unlike = (ev.solid > rule.max_solid) | (ev.pieces > rule.max_pieces) | (ev.unexplained > rule.max_unexplained)
    unsure = ev.confidence < rule.min_confidence
    two = ev.pair_share >= rule.min_pair_share
    return np.where(unlike | (unsure & ~two), NOT_A_DIGIT, np.where(unsure, UNSURE, DIGIT))


def fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 (first 16 hex digits) of a model's state: names, shapes and values, in order."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def load_rules(path: str | os.PathLike = RULES_FILE) -> dict:
    """benchmarks/not_a_digit.json as written ({} when absent): its "shapes" and per set of networks
    its "rule", "fingerprints" and measured "rates"."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else {}


def rule_for(rules: dict, networks: str, readers: dict[str, torch.nn.Module]) -> tuple[Rule | None, str]:
    """The rule chosen for this set of networks, if `readers` ({variant: model}, the set's loaded
    variants with digit outputs) are the very networks it was chosen for; else (None, why)."""
    chosen = rules.get("sets", {}).get(networks)
    if chosen is None:
        return None, f"no rule chosen for the {networks!r} networks (run python benchmarks/not_a_digit.py)"
    if {name: fingerprint(model) for name, model in readers.items()} != chosen["fingerprints"]:
        return None, (f"the rule in benchmarks/not_a_digit.json was chosen for other {networks!r} networks "
                      "than these (rerun python benchmarks/not_a_digit.py after exporting weights)")
    shapes = Shapes(np.asarray(rules["shapes"]["mean"]), np.asarray(rules["shapes"]["components"]))
    return Rule(**chosen["rule"], shapes=shapes), ""


def rates_markdown(rules: dict) -> str:
    """The measured rates of benchmarks/not_a_digit.json (its check half), one line per set of
    networks: for the README and the About panel."""
    lines = []
    for networks, chosen in rules.get("sets", {}).items():
        r = chosen["rates"]["check"]
        least = sorted(r["non_digits"]["kinds"].items(), key=lambda kv: kv[1]["caught"])[:3]
        lines.append(
            f"- {networks} networks (validation, used for choices; the half not used to choose): real digits "
            f"flagged: {r['mnist']['flagged']} % of MNIST validation digits "
            f"(of those, {r['mnist']['flagged_misread']} % misread), {r['usps']['read_right_flagged']} % of the USPS "
            f"digits they read right (goal for both: at most {GOALS['flagged']:g} %), {r['uci']['flagged']} % of UCI's; "
            f"non-digits caught: {r['non_digits']['caught']} % (goal: {GOALS['caught']:g} %; least caught: "
            + ", ".join(f"{kind} {v['caught']} %" for kind, v in least) + "); the same search with more real digits "
            "flagged: " + ", ".join(f"{budget} % flagged, {caught} % caught" for budget, caught in chosen["tradeoff"].items())
            + ".")
    return "\n".join(lines)
