"""The guard: whether a drawing is a digit at all, and whether its reading is to be doubted.

The five networks learn from MNIST pairs alone, and a softmax gives every drawing some digit,
often with a high probability: a dot, scaled into the 20 px box like any drawing, is a filled disc
that reads "0" at 99 %. The guard is a small network of its own beside them (`GuardNet`: a few
`Reader`s, each with 10 digit outputs and an 11th, "not a digit", a background class trained with
outlier exposure, Hendrycks et al., 2019, "Deep Anomaly Detection with Outlier Exposure"; their
probabilities averaged, as an ensemble's, whose members part ways off the data they learned from,
Lakshminarayanan et al., 2017). It is fitted on digits and non-digits drawn as the page draws them
(digitpair/guard/fit.py, `digitpair-train fit-guard`). Open-set recognition tracks closed-set
accuracy (Vaze et al., 2022, "Open-Set Recognition: a Good Closed-Set Classifier is All You
Need?"): a guard that reads pen digits well is also a better judge, so it learns every digit it
may learn from, not the networks' 1000 pairs; and it reads the 28x28 field the networks' 14x14
input is pooled from, where a letter's strokes are still apart.

Each drawing gets a `Judgement` under its set's `Limits`, from two numbers: a score of how little
it looks like a digit to the guard (`SCORES`, the one its limits name), and `agreement`, the share
of the guard's digit distribution on the digit the readers read (the set's networks with digit
outputs, their mean distribution, as the page shows it):
- "not a digit": odds = score - weight x logit(agreement) above `max_odds` (with `weight` 0, the
  guard's score alone; above 0, a drawing whose reading the guard does not share needs less of
  it: the readers' evidence combined with the guard's);
- "unsure": `agreement` under `min_agreement`: the guard doubts the readers' digit, or reads
  another (a wrong answer said with doubt is better than one said with confidence);
- "digit" otherwise.

Its two digits (`Drawing.digits`) are the readers' likeliest, with the readers' probability, and
the guard's likeliest where it reads another, else the readers' second ("unsure, 4 or 9").

Its files sit beside the weights they belong to, `guard/` in weights' layout (`FILES`): the
network (`model.safetensors`) and `guard.json`, which records the network's SHA-256, the limits
chosen for each set of networks, the fingerprints of those networks (`fingerprint`: their
readings are what the limits were chosen on), what it was fitted on and the rates measured on
held-out writers and kinds of drawing. `load` refuses a missing, damaged or mismatched guard with
a `GuardError`; the page and `/compare` then say that drawings are not judged.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from torch import nn

from ..core.config import UNKNOWN
from ..core.stacking import stack
from ..core.weights import GUARD_FILES, GUARD_FOLDER

# The guard's files beside the networks, in the weights folder's (and Hub repo's) layout.
FOLDER, FILES = GUARD_FOLDER, GUARD_FILES
WEIGHTS_NAME, RECORD_NAME = (file.removeprefix(f"{FOLDER}/") for file in FILES)
FORMAT = 1  # guard.json's layout
OTHER = 10  # the background class's output: "not a digit"
# %: real digits flagged at most, non-digits called "not a digit" at least (the goals);
# the About panel and the README quote them beside the measured rates.
GOALS = {"flagged": 1.0, "uci_flagged": 2.0, "not_a_digit": 95.0, "misread_flagged": 50.0}


class Judgement(str, enum.Enum):
    DIGIT = "digit"
    UNSURE = "unsure"
    NOT_A_DIGIT = "not a digit"


@dataclass(frozen=True)
class Limits:
    """A set of networks' limits: "not a digit" above `max_odds` of SCORES[`score`] - `weight` x
    logit(agreement); "unsure" under `min_agreement`."""

    max_odds: float
    weight: float
    min_agreement: float
    score: str = "background"


@dataclass(frozen=True)
class Drawing:
    """What the page and `/compare` say of one drawing: its judgement (None: not judged) and its
    two digits, [(digit, probability)] x 2, likeliest first (None without a reading)."""

    judgement: Judgement | None
    digits: tuple[tuple[int, float], tuple[int, float]] | None

    def to_json(self) -> dict:
        return {
            "judgement": None if self.judgement is None else self.judgement.value,
            "digits": None if self.digits is None else [list(d) for d in self.digits],
        }


class GuardError(RuntimeError):
    """The guard's files are missing, damaged or belong to other networks; the message says
    which."""


# The Reader's width: its three convolutions' channels and its hidden layer's units. Chosen on the
# choosing writers and kinds: 48/96/192 over a third and two thirds as wide, then this step
# wider, as three readers that learn half of UCI's digits too (fit.MEMBERS, fit.HALVES;
# benchmarks/README.md): a better reader of digits is a better judge (Vaze et al., 2022). The
# served guard is three readers wider again (`fit-guard --seed 0 --channels 96,192,384 --hidden
# 384`, its record names them), chosen by the choosing split; its gains are within a seed's reach.
CHANNELS, HIDDEN = (64, 128, 256), 256


def scaled(x: torch.Tensor) -> torch.Tensor:
    """(N, 28, 28) raw 0-255 drawings -> (N, 1, 28, 28) in 0-1: what a Reader's first convolution
    reads."""
    return x[:, None] / 255.0


class Reader(nn.Module):
    """(N, 28, 28) raw 0-255 drawings, boxed and centred as `drawing.mnist_field` makes them ->
    (N, 11) logits: the ten digits and "not a digit". Three 3x3 convolutions (`channels`), each
    followed by a 2x2 max-pool, and one hidden layer: 963k parameters at CHANNELS and HIDDEN."""

    def __init__(self, channels: tuple[int, int, int] = CHANNELS, hidden: int = HIDDEN):
        super().__init__()
        c1, c2, c3 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 7x7
            nn.Conv2d(c2, c3, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 3x3
            nn.Flatten(),
            nn.Linear(9 * c3, hidden),
            nn.ReLU(),
            nn.Linear(hidden, OTHER + 1),
        )

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 28, 28) raw 0-255 -> (N, hidden): the features the last layer reads."""
        return self.features[:-1](scaled(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features[-1](self.hidden(x))


class GuardNet(nn.Module):
    """`members` Readers trained alike from different seeds, their probabilities averaged: about
    2.5 ms a drawing (two at a time) for three readers on one CPU thread at CHANNELS and HIDDEN
    in channels-last, and a sixth less served stacked (`StackedReaders`, page.served.serving)."""

    def __init__(
        self, members: int = 3, channels: tuple[int, int, int] = CHANNELS, hidden: int = HIDDEN
    ):
        super().__init__()
        self.readers = nn.ModuleList(Reader(channels, hidden) for _ in range(members))
        self.channels, self.hidden = tuple(channels), hidden

    @torch.inference_mode()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 28, 28) raw 0-255 -> (members, N, 11): each reader's logits."""
        return torch.stack([reader.eval()(x.float()) for reader in self.readers])

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 28, 28) raw 0-255 -> (N, 11): the ten digits and "not a digit"."""
        return probabilities(self.logits(x))


class StackedReaders(nn.Module):
    """A GuardNet's readers as one network, to answer with (core/stacking.py): each layer's copies
    run as one grouped convolution or batched matrix product. The same logits as
    `GuardNet.logits` up to float rounding, in about five sixths of its time for two drawings on
    one CPU thread (`python benchmarks/serving.py`); not for training."""

    def __init__(self, net: GuardNet):
        super().__init__()
        self.members = len(net.readers)
        self.readers = stack([list(reader.features) for reader in net.readers])
        self.eval()

    @torch.inference_mode()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 28, 28) raw 0-255 -> (members, N, 11), as `GuardNet.logits`."""
        return self.readers(scaled(x.float()).expand(-1, self.members, -1, -1))


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """(members, N, 11) logits -> (N, 11): the members' probabilities averaged."""
    return logits.softmax(-1).mean(0)


@dataclass(frozen=True)
class Guard:
    net: GuardNet | StackedReaders  # as fitted and loaded, or as served (page.served.serving)
    limits: dict[str, Limits]  # {set of networks: its limits}
    fingerprints: dict[str, dict[str, str]]  # {set: {variant: fingerprint}} they were chosen with
    record: dict  # guard.json as read


@dataclass(frozen=True)
class Judge:
    """A guard with the limits of one set of networks: what the page and `/compare` judge by."""

    guard: Guard
    limits: Limits

    @classmethod
    def of(cls, guard: Guard, networks: str, models: dict[str, nn.Module]) -> Judge:
        """The guard's judge for set `networks`, if every loaded model in `models` ({variant:
        model}) is the one its limits were chosen with; else a `GuardError` saying which is not."""
        if networks not in guard.limits:
            raise GuardError(f"the guard has no limits for the {networks!r} networks")
        recorded = guard.fingerprints[networks]
        other = [name for name, model in models.items() if recorded.get(name) != fingerprint(model)]
        if other:
            raise GuardError(
                f"the guard was fitted for other {networks!r} networks than these "
                f"({', '.join(other)}): fit it again (digitpair-train fit-guard) "
                "after exporting weights"
            )
        return cls(guard, guard.limits[networks])

    def __call__(self, x: torch.Tensor, readers: torch.Tensor | None) -> list[Drawing]:
        return judge(self.guard, self.limits, x, readers)


def fingerprint(model: nn.Module) -> str:
    """SHA-256 (first 16 hex digits) of a model's state: names, shapes and values, in order."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def logit(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(1e-6, 1 - 1e-6)
    return p.log() - (1 - p).log()


# Scores of how little a drawing looks like a digit to the guard, from its members' logits
# (members, N, 11) -> (N,), higher: less like a digit. Each set's limits name theirs, chosen on the
# choosing writers and kinds (fit.choose).
SCORES = {
    # The odds of the background class, the members' probabilities averaged (outlier exposure).
    "background": lambda logits: logit(probabilities(logits)[:, OTHER]),
    # The free energy of the ten digit outputs, -logsumexp, averaged over the members (Liu et al.,
    # 2020, "Energy-based Out-of-distribution Detection"): under the entropic term a non-digit's
    # digit logits are flat and low, a digit's one logit high.
    "energy": lambda logits: -logits[..., :OTHER].logsumexp(-1).mean(0),
}


def odds(score: torch.Tensor, agreement: torch.Tensor, weight: float) -> torch.Tensor:
    """What "not a digit" is judged on: the score - weight x logit(agreement)."""
    return score - weight * logit(agreement)


def judge(
    guard: Guard, limits: Limits, x: torch.Tensor, readers: torch.Tensor | None
) -> list[Drawing]:
    """Drawings x (N, 28, 28) raw 0-255, boxed and centred, and the readers' mean digit
    distributions (N, 10) (None: no reader loaded; the guard's own reading stands in) -> a judged
    `Drawing` each."""
    logits = guard.net.logits(x)
    p = probabilities(logits)
    own = p[:, :OTHER] / p[:, :OTHER].sum(1, keepdim=True).clamp_min(1e-12)
    reading = own if readers is None else readers
    order = reading.sort(dim=1, descending=True, stable=True).indices
    agreement = own.gather(1, order[:, :1])[:, 0]
    score = SCORES[limits.score](logits.double())
    not_a_digit = odds(score, agreement.double(), limits.weight) > limits.max_odds
    out = []
    for i in range(len(x)):
        if not_a_digit[i]:
            judgement = Judgement.NOT_A_DIGIT
        elif agreement[i] < limits.min_agreement:
            judgement = Judgement.UNSURE
        else:
            judgement = Judgement.DIGIT
        first, guards = int(order[i, 0]), int(own[i].argmax())
        second = guards if guards != first else int(order[i, 1])
        digits = ((first, float(reading[i, first])), (second, float(reading[i, second])))
        out.append(Drawing(judgement, digits))
    return out


def unjudged(readers: torch.Tensor | None) -> list[Drawing]:
    """Drawings not judged: the readers' two likeliest digits each (None without readers)."""
    if readers is None:
        return []
    order = readers.sort(dim=1, descending=True, stable=True).indices[:, :2]
    return [Drawing(None, tuple((int(d), float(r[d])) for d in o)) for o, r in zip(order, readers)]


def read_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise GuardError(f"{path} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise GuardError(f"{path} can't be read as JSON ({e})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise GuardError(f"{path} is not a guard record of format {FORMAT}")
    return record


def load(folder: str | os.PathLike) -> Guard:
    """The guard in `folder` (a weights folder's `guard/`), every part checked: its record, the
    network's SHA-256 as recorded, its tensors. Any failure is a `GuardError` naming the file."""
    folder = Path(folder)
    record = read_record(folder / RECORD_NAME)
    path = folder / WEIGHTS_NAME
    try:
        data = path.read_bytes()
    except OSError as e:
        raise GuardError(f"{path} can't be read ({e.strerror or e})") from None
    if hashlib.sha256(data).hexdigest() != record.get("weights", {}).get("sha256"):
        raise GuardError(
            f"{path} is not the file {RECORD_NAME} was written with (damaged, or another fit's)"
        )
    try:
        arch = record["architecture"]
        net = GuardNet(arch["members"], tuple(arch["channels"]), arch["hidden"])
        net.load_state_dict(load_tensors(data), strict=True)
        limits = {name: Limits(**chosen["limits"]) for name, chosen in record["networks"].items()}
        unknown = sorted({lim.score for lim in limits.values()} - set(SCORES))
        if unknown:
            raise ValueError(f"score {', '.join(unknown)} is not one of {', '.join(SCORES)}")
        fingerprints = {
            name: dict(chosen["fingerprints"]) for name, chosen in record["networks"].items()
        }
    except (KeyError, TypeError, ValueError, RuntimeError, SafetensorError) as e:
        raise GuardError(
            f"{folder} holds a guard this code can't read ({type(e).__name__}: {e})"
        ) from None
    return Guard(net.eval(), limits, fingerprints, record)


def learned_halves(record: dict) -> tuple[str, ...]:
    """The digit sets a guard record's fit learned half of (`fit-guard --usps`, `--uci`), their
    rates then measured on the other half."""
    sources = record.get("fitted_on", {}).get("sources", {})
    return tuple(name for name in HALVED if name in sources)


def rates_markdown(record: dict) -> str:
    """The held-out rates of a guard record, one line per set of networks: for the README and
    the About panel."""
    lines, titles = [], dict(TITLES)
    for name in learned_halves(record):
        titles[name] = (
            f"the half of {HALVED[name]}'s digits it did not learn from (its writers unknown)"
        )
    for networks, chosen in record.get("networks", {}).items():
        if "rates" not in chosen:  # a record written without measuring (tests' guards)
            continue
        r = chosen["rates"]
        digits = r["digits"]
        right = ", ".join(
            f"{digits[name]['read_right_flagged']} % of {titles[name]}" for name in DIGIT_SETS
        )
        every = ", ".join(f"{digits[name]['flagged']} %" for name in DIGIT_SETS)
        unseen = (  # a guard fitted on every character has none held out to measure
            f" ({r['pen_characters_unseen']['not_a_digit']} % of the characters it never "
            "learned from)"
            if "pen_characters_unseen" in r
            else ""
        )
        lines.append(
            f"- {networks} networks (held-out validation: writers and kinds of drawing the guard "
            f'was neither fitted nor chosen on): "not a digit" for '
            f"{r['pen_characters']['not_a_digit']} % of pen letters and symbols{unseen} and "
            f"{r['doodles']['not_a_digit']} % of drawn non-digits of kinds it never saw "
            f"(goal: {GOALS['not_a_digit']:g} %); real digits the networks read right flagged: "
            f"{right} (goal: at most {GOALS['flagged']:g} %, UCI {GOALS['uci_flagged']:g} %; all "
            f"real digits, misread ones too: {every}); of the pen digits the networks misread "
            f"({digits['pen']['misread']} %), {digits['pen']['misread_flagged']} % flagged "
            f"(goal: {GOALS['misread_flagged']:g} %)."
        )
    return "\n".join(lines)


def fitted_markdown(record: dict) -> str:
    """What a guard record says was fitted and how its limits were chosen, one paragraph: for
    docs/guard.md."""
    arch, budget = record["architecture"], record["fitted_on"]["budget"]
    channels, hidden = tuple(arch["channels"]), arch["hidden"]
    size = sum(p.numel() for p in Reader(channels, hidden).parameters())
    sets = ", ".join(CHOOSING_TITLES.get(name, name) for name in budget["sets"])
    return (
        f"The served guard: {arch['members']} readers, each three convolutions of "
        f"{'/'.join(map(str, channels))} channels and {hidden} hidden units ({size / 1000:.0f}k "
        f"parameters), {record['epochs']} epochs, seed {record['seed']}, fitted by "
        f"`{record['command']}` at commit {record.get('commit', UNKNOWN)}. Its limits flag at "
        f"most {budget['target']:g} % of the choosing side's digits the networks read right "
        f"({sets})."
    )


def misses_markdown(record: dict, most: int = 6) -> str:
    """The held-out characters and unseen kinds of drawing a guard record's rates catch least,
    one line per set of networks: for docs/guard.md."""
    lines = []
    for networks, chosen in record.get("networks", {}).items():
        if "rates" not in chosen:
            continue
        r = chosen["rates"]
        least = sorted(r["pen_characters"].get("per_label", {}).items(), key=lambda kv: kv[1])
        kinds = sorted(r["doodles"]["per_kind"].items(), key=lambda kv: kv[1])
        lines.append(
            f"- {networks} networks, the held-out writers' characters caught least: "
            + ", ".join(f"`{c}` {v} %" for c, v in least[:most])
            + "; the kinds never seen: "
            + ", ".join(f"{k} {v} %" for k, v in kinds)
            + "."
        )
    return "\n".join(lines)


def docs_markdown(record: dict) -> str:
    """docs/guard.md's block: what was fitted, its held-out rates, what it catches least."""
    return "\n\n".join([fitted_markdown(record), rates_markdown(record), misses_markdown(record)])


DIGIT_SETS = ("pen", "mnist", "mnist_pen", "usps", "uci")
TITLES = {
    "pen": "pen digits",
    "mnist": "MNIST test digits drawn on the canvas",
    "mnist_pen": "the same redrawn with the pad's pen",
    "usps": "USPS digits",
    "uci": "UCI digits",
}
# The digit sets the limits are chosen on, by name (fit.held_out: writers and digits never fitted).
CHOOSING_TITLES = {
    "pen": "the choosing writers' pen digits",
    "mnist": "MNIST training digits kept out of fitting, drawn on the canvas",
    "mnist_pen": "the same redrawn with the pad's pen",
}

# The digit sets that name no writers, of which a fit may learn half (fit.HALVES), by name.
HALVED = {"usps": "USPS", "uci": "UCI"}
