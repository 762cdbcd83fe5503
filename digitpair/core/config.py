"""What a run is and what it yields, as typed values: `RunConfig` (one run's recipe, checked as it
is built), `Metrics` (what it scored) and `Provenance` (where and from which code it trained).

`RunConfig()` is our recipe, chosen on validation pairs (train/studies/best.toml says where each
choice came from); a study file's settings say only what they change. Every field a record could
not know is "unknown" (`UNKNOWN`): nothing fills it in later.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass

from .augment import AUGMENTATIONS, PER_DIGIT
from .data import fold_count
from .models import DEFAULT_ENCODER, DEFAULT_HEAD, VARIANTS, check_build
from .typed import check

OPTIMIZERS = ("adam", "sgd", "rmsprop")
# MNIST-test's 10000 images make at most 5000 pairs of distinct images (data.mnist_to_pairs).
MAX_PAIRS = 5000
SEEDS = 2**63  # torch.manual_seed takes any 64-bit seed; non-negative ones print and sort plainly


@dataclass(frozen=True)
class Range:
    """The values a numeric field takes: low .. high, each end included unless marked open."""

    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    why: str = ""

    def __contains__(self, value) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open or self.high == math.inf else value <= self.high
        return (not isinstance(value, float) or math.isfinite(value)) and above and below

    def __str__(self) -> str:
        if self.high == math.inf:
            text = f"{'>' if self.low_open else '>='} {self.low}"
        else:
            opens, closes = "(" if self.low_open else "[", ")" if self.high_open else "]"
            text = f"in {opens}{self.low}, {self.high}{closes}"
        return f"{text} ({self.why})" if self.why else text


# The range of every numeric RunConfig field but the two that depend on others (val_pairs < n_pairs,
# val_fold < data.fold_count: RunConfig.ranges). Floats must also be finite: no NaN, no inf.
RANGES = {
    "lr": Range(0, low_open=True),
    "momentum": Range(0, 1, high_open=True),
    "batch_size": Range(1),
    "epochs": Range(1),
    "weight_decay": Range(0),
    "aux_weight": Range(0),
    "label_smoothing": Range(0, 1, high_open=True),
    "ema": Range(0, 1, high_open=True),
    "n_pairs": Range(1, MAX_PAIRS, why=f"MNIST-test's 10000 images make {MAX_PAIRS} pairs"),
    "tta": Range(0),
    "data_seed": Range(0, SEEDS, high_open=True),
    "init_seed": Range(0, SEEDS, high_open=True),
    "members": Range(1),
}


@dataclass(frozen=True)
class RunConfig:
    """One run's recipe. The defaults are ours, every choice made on validation pairs before the
    final study ran (train/results/README.md tells each study's part): `best`'s `recipe` setting."""

    variant: str = "shared_aux"
    encoder: str = (
        DEFAULT_ENCODER  # the conv trunk (core/models.py ENCODERS): `tuning`, benchmarks/README.md
    )
    head: str = (
        DEFAULT_HEAD  # the comparison head: "order" (ours) or "fc" (the 2020 report's), see HEADS
    )
    # levers: SGD with momentum at step 0.1 led Adam (1e-3) at the last epoch: shared +2.0,
    # unshared +4.6, unshared_aux +0.9 points, shared_aux and simple_cnn level, at the same cost.
    optimizer: str = "sgd"  # "adam" | "sgd" | "rmsprop"; the 2020 report compared all three
    lr: float = 0.1
    momentum: float = 0.9  # sgd / rmsprop only; the 2020 report used the torch defaults (0)
    batch_size: int = 100  # 10 steps per epoch on 1000 pairs
    # 1000 steps on 1000 pairs, the time budget; the levers' validation pairs slightly favoured 120.
    epochs: int = 100
    schedule: str = (
        "cosine"  # "constant" | "cosine" (annealed to 0 over the epochs: the last epoch is kept)
    )
    weight_decay: float = 0.0  # levers: mixed (shared_aux +0.75 points, three others -0.4 to -0.6)
    aux_weight: float = (
        1.0  # loss = pair CE + aux_weight * (CE digit a + CE digit b), as the report
    )
    label_smoothing: float = 0.0  # of the pair and digit cross-entropies (F.cross_entropy's)
    ema: float = 0.0  # > 0: decay per step of an EMA of weights and buffers, used instead of them
    # "fp32" | "bf16": autocast convolutions and matmuls to bfloat16; parity over 75 paired runs,
    # ~1.3x faster where the CPU has bf16 units (benchmarks/README.md).
    precision: str = "bf16"
    # "none" | "seed" | "safe" | "elastic" | "style" ..., see core/augment.py; levers: elastic
    # distortions cost the networks without digit labels 2-4 points.
    augmentation: str = "safe"
    swap: bool = (
        True  # with a per-digit augmentation: swap the digits; only where digit labels are trained
    )
    n_pairs: int = 1000  # pairs per split, as generate_pair_sets(1000)
    # All 1000 pairs train and the last epoch is kept, as the 2020 report did: the recipe was
    # chosen on validation pairs before. A study that selects carves val_pairs out of the 1000.
    val_pairs: int = 0
    val_fold: int = 0  # which val_pairs-sized slice is held out, counted from the end (data.py)
    tta: int = 0  # evaluation only: average over the pair and this many affine copies of it
    selection: str = "last"  # "last" | "best_val" (the epoch with the best validation accuracy)
    test: bool = False  # score the test pairs once, after selection: final studies only
    data_seed: int = 0
    init_seed: int = 1
    members: int = 1  # > 1: an ensemble; member i is initialised with init_seed + i

    def __post_init__(self):
        for field, kind in FIELD_TYPES.items():
            check(getattr(self, field), kind, field)
        for field, allowed in self.ranges().items():
            if getattr(self, field) not in allowed:
                raise ValueError(
                    f"{field}={getattr(self, field)!r} is out of range: {field} takes "
                    f"{'an integer' if FIELD_TYPES[field] is int else 'a finite number'} {allowed}"
                )
        check_build(self.variant, self.encoder, self.head, self.members)
        checks = {
            "optimizer": (self.optimizer in OPTIMIZERS, OPTIMIZERS),
            "augmentation": (self.augmentation in AUGMENTATIONS, AUGMENTATIONS),
            "schedule": (self.schedule in ("constant", "cosine"), ("constant", "cosine")),
            "selection": (self.selection in ("best_val", "last"), ("best_val", "last")),
            "precision": (self.precision in ("fp32", "bf16"), ("fp32", "bf16")),
        }
        for field, (ok, choices) in checks.items():
            if not ok:
                raise ValueError(
                    f"{field}={getattr(self, field)!r}; choose one of {', '.join(choices)}"
                )
        if self.selection == "best_val" and self.val_pairs == 0:
            raise ValueError("selection='best_val' needs val_pairs > 0")
        if self.init_seed <= self.data_seed < self.init_seed + max(self.members, 1):
            raise ValueError(
                "data_seed and init_seed must differ (they seed different things); "
                "an ensemble's members take init_seed .. init_seed + members - 1"
            )

    def ranges(self) -> dict[str, Range]:
        """Every numeric field's range, those that depend on other fields included."""
        folds = fold_count(self.n_pairs, self.val_pairs)
        return {
            **RANGES,
            "val_pairs": Range(0, self.n_pairs, high_open=True, why="fewer than n_pairs"),
            "val_fold": Range(
                0,
                folds,
                high_open=True,
                why=f"{self.n_pairs} pairs make {folds} fold(s) of "
                f"{self.val_pairs} validation pairs"
                if self.val_pairs
                else "no validation pairs",
            ),
        }

    @property
    def uses_swap(self) -> bool:
        # Swapping recomputes the target from the classes: only for variants that see classes.
        return self.swap and self.augmentation in PER_DIGIT and VARIANTS[self.variant].digit_loss

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        return cls(**d)


FIELD_TYPES = typing.get_type_hints(RunConfig)  # field -> bool, int, float or str


@dataclass(frozen=True)
class Metrics:
    """What a run scored, at the epoch it kept: what its record holds (records.RunRecord), its
    model card quotes and its study's summary averages."""

    selected_epoch: int
    val_acc: float | None  # None: no validation pairs (selection = "last")
    val_digit_acc: float | None
    test_acc: float | None  # None: the test pairs were not evaluated (config.test = False)
    test_digit_acc: float | None  # None also for variants without digit outputs
    parameters: int
    train_pairs: int
    test_pairs: int
    wall_seconds: float
    # Other writers' digits (digitpair/core/writers.py), validation data read by non-final runs;
    # None:
    # not read (final runs, synthetic data, runs recorded before they were read).
    usps_digit_acc: float | None = None
    usps_pair_acc: float | None = None
    uci_digit_acc: float | None = None
    uci_pair_acc: float | None = None
    pen_digit_acc: float | None = None
    pen_pair_acc: float | None = None
    pen_per_digit: list[float] | None = None  # pen digits read right, % of each class 0-9
    # An ensemble's members (train_ensemble), each trained and selected as a single run would be;
    # None for single networks and for ensembles recorded before these were kept.
    member_selected_epochs: list[int] | None = None
    member_val_acc: list[float | None] | None = None

    def to_dict(self) -> dict:
        """As recorded: an optional metric that was not read is left out, not written as null, so
        the records of runs that never read it stay as they were written."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.default is dataclasses.MISSING or getattr(self, f.name) is not None
        }


UNKNOWN = "unknown"  # what was never recorded: never inferred, never filled in later


@dataclass(frozen=True)
class Provenance:
    """Where and with what the run trained, recorded by the process that trained it."""

    commit: str  # short git sha of the code, or "unknown"
    dirty: bool | str  # the package's code differed from the commit; "unknown" where not recorded
    machine: dict | str  # cpu, cpu_count, gpu, python, platform, torch_threads; or "unknown"
    torch: str
    device: str  # "cpu", "cuda", ...
    started_at: str  # UTC, ISO 8601
    finished_at: str
    # The study command that trained it: its id in invocations.jsonl, set by the driver as it writes
    # the record; "unknown" for runs recorded before runs named their invocation.
    invocation: str = UNKNOWN
    data: str = UNKNOWN  # "mnist", or "synthetic": a dry run's random digits (data.synthetic_mnist)

    def to_dict(self) -> dict:
        # A field never recorded stays unwritten: the rows of older runs pack to the bytes they were
        # written as.
        return {
            k: v
            for k, v in dataclasses.asdict(self).items()
            if not (k in ("invocation", "data") and v == UNKNOWN)
        }
