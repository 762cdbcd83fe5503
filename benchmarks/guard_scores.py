"""Other "not a digit" scores for the guard in weights/guard/, under fit-guard's protocol; prints a
table.

The guard calls a drawing "not a digit" where a score (guard.SCORES: the background class's odds,
or the energy of its digit outputs), less a weight times the odds of the digit the networks read,
passes a limit (digitpair/guard/__init__.py). This script puts other scores of the same network
in that place and judges each alone as `digitpair-train fit-guard` does (digitpair/guard/fit.py,
reused, not copied): the limits chosen on the choosing writers and kinds (`fit.choose`: every
weight and share of the 0.7 % budget of digits read right, the most non-digits caught), the rates
measured on the others (`fit.held_out`). A score is picked on the choosing split alone (the mean
of "not a digit" over its characters and kinds, as `fit.choose` ranks limits); the measuring
split's rates are printed for the background odds and that pick only. Every score is "higher:
less like a digit"; over the members' logits L (members, n, 11), their softmax P and its mean p:

- background: logit(p_other), the background class alone;
- background, member mean / min / max: logit(P_other) of each member, then their mean, least or
  greatest (a member's doubt alone does or does not carry);
- not the likeliest digit: logit(1 - max p_digit) (max softmax, Hendrycks & Gimpel, 2017);
- own doubt: -logit(the guard's likeliest digit, of its digits alone) (no background at all);
- energy: -logsumexp of each member's 10 digit logits, averaged (Liu et al., 2020);
- max logit: -max of each member's 10 digit logits, averaged (Hendrycks et al., 2022);
- background margin: each member's background logit less its greatest digit logit, averaged;
- background + c x entropy: logit(p_other) + c x the entropy (nats) of the guard's own digits;
- kNN: the mean over members of the distance from a drawing's normalized features (the hidden
  layer) to its k-th nearest fitting digit (Sun et al., 2022), a sample of the digits fit-guard
  learns from;
- Mahalanobis: the log of the members' mean squared Mahalanobis distance from a drawing's
  features to the nearest digit's mean, the covariance shared by the ten (Lee et al., 2018), both
  taken over the same sample; in the energy's units (times the ratio of the two scores' spreads
  over that sample), so that
- energy + c x Mahalanobis weighs the two alike at c = 1.

    python benchmarks/guard_scores.py [--weights weights] [--networks ours] [--guard FOLDER]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: this checkout's digitpair

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks import guard_fits  # noqa: E402
from digitpair import guard  # noqa: E402
from digitpair.guard import data as guard_data  # noqa: E402
from digitpair.guard import fit as guard_fit  # noqa: E402
from digitpair.guard.pretrained import load_pretrained  # noqa: E402

OTHER = guard.OTHER
KNN_K, KNN_BANK = 50, 20_000  # the k-th neighbour, and how many fitting digits are searched
ENTROPY_WEIGHTS = (1.0, 2.0, 4.0, 8.0)
MAHALANOBIS_WEIGHTS = (0.5, 1.0, 2.0)


@dataclasses.dataclass(frozen=True)
class Read:
    """What the guard's members make of one set: their logits (members, n, 11), the guard's
    averaged probabilities (n, 11) as fit-guard computes them, the kNN distances (n,) and the
    Mahalanobis distances (n,), in the energy's units."""

    logits: torch.Tensor
    p: np.ndarray
    knn: np.ndarray
    mahalanobis: np.ndarray


@dataclasses.dataclass(frozen=True)
class Bank:
    """Fitting digits' features, per member: normalized (kNN), and each digit's mean of the
    hidden features with the inverse of the covariance around them (Mahalanobis); `scale`: the
    energy's spread over the Mahalanobis distance's, on these digits."""

    normalized: list[torch.Tensor]
    means: list[torch.Tensor]
    precision: list[torch.Tensor]
    scale: float


def nearest_mean(f: torch.Tensor, means: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
    """(N, hidden) features -> (N,): the squared Mahalanobis distance to the nearest mean."""
    apart = f.double()[:, None, :] - means[None]
    return torch.einsum("ncd,de,nce->nc", apart, precision, apart).min(1).values


@torch.inference_mode()
def read(net: guard.GuardNet, fields: np.ndarray, bank: Bank) -> Read:
    logits = guard_fit.guard_logits(net, fields)
    x = torch.from_numpy(fields).float()
    chunks = [x[i : i + 4096] for i in range(0, len(x), 4096)]
    knn, squared = np.zeros(len(x)), np.zeros(len(x))
    members = len(net.readers)
    for k, reader in enumerate(net.readers):
        for i, c in enumerate(chunks):
            f = reader.hidden(c)
            distance = torch.cdist(torch.nn.functional.normalize(f, dim=1), bank.normalized[k])
            kth = distance.kthvalue(KNN_K, dim=1).values
            knn[i * 4096 : i * 4096 + len(c)] += kth.double().numpy() / members
            near = nearest_mean(f, bank.means[k], bank.precision[k])
            squared[i * 4096 : i * 4096 + len(c)] += near.numpy() / members
    mahalanobis = bank.scale * np.log(np.maximum(squared, 1e-12))
    return Read(logits, guard.probabilities(logits).numpy(), knn, mahalanobis)


def digit_logits(r: Read) -> torch.Tensor:
    return r.logits[..., :OTHER].double()


def entropy(r: Read) -> torch.Tensor:
    own = torch.from_numpy(r.p[:, :OTHER]).double()
    own = own / own.sum(1, keepdim=True).clamp_min(1e-12)
    return -(own * own.clamp_min(1e-12).log()).sum(1)


def background(r: Read) -> torch.Tensor:
    return guard.SCORES["background"](r.logits.double())


def member_background(r: Read) -> torch.Tensor:
    return guard.logit(r.logits.double().softmax(-1)[..., OTHER])


SCORES: dict[str, Callable[[Read], torch.Tensor]] = {
    "background": background,
    "background, member mean": lambda r: member_background(r).mean(0),
    "background, member min": lambda r: member_background(r).min(0).values,
    "background, member max": lambda r: member_background(r).max(0).values,
    "not the likeliest digit": lambda r: guard.logit(
        1 - torch.from_numpy(r.p[:, :OTHER]).double().max(1).values
    ),
    "own doubt": lambda r: (
        -guard.logit(
            torch.from_numpy(r.p[:, :OTHER] / r.p[:, :OTHER].sum(1, keepdims=True))
            .double()
            .max(1)[0]
        )
    ),
    "energy": lambda r: guard.SCORES["energy"](r.logits.double()),
    "max logit": lambda r: -digit_logits(r).max(-1).values.mean(0),
    "background margin": lambda r: (
        r.logits[..., OTHER].double() - digit_logits(r).max(-1).values
    ).mean(0),
    **{
        f"background + {c:g} x entropy": (lambda r, c=c: background(r) + c * entropy(r))
        for c in ENTROPY_WEIGHTS
    },
    "kNN": lambda r: torch.from_numpy(r.knn),
    "Mahalanobis": lambda r: torch.from_numpy(r.mahalanobis),
    **{
        f"energy + {c:g} x Mahalanobis": (
            lambda r, c=c: (
                guard.SCORES["energy"](r.logits.double()) + c * torch.from_numpy(r.mahalanobis)
            )
        )
        for c in MAHALANOBIS_WEIGHTS
    },
}


def digit_bank(net: guard.GuardNet, load, seed: int = 0) -> Bank:
    """Each member's features of KNN_BANK digits drawn from those fit-guard learns from, and
    their statistics (`Bank`)."""
    sources = guard_fit.training_set(load)
    digits = guard_fit.cat([sources[n] for n in ("mnist_train", "mnist_train_pen", "pen_digits")])
    pick = torch.randperm(len(digits.y), generator=torch.Generator().manual_seed(seed))
    x, y = digits.x[pick[:KNN_BANK]].float(), digits.y[pick[:KNN_BANK]]
    normalized, means, precision, logits, squared = [], [], [], [], 0.0
    with torch.inference_mode():
        for reader in net.readers:
            hidden = reader.eval().hidden(x)
            f = hidden.double()
            mean = torch.stack([f[y == c].mean(0) for c in range(OTHER)])
            apart = f - mean[y]
            covariance = apart.T @ apart / len(f)
            ridge = 1e-3 * covariance.diagonal().mean() * torch.eye(len(covariance))
            normalized.append(torch.nn.functional.normalize(hidden, dim=1))
            means.append(mean)
            precision.append(torch.linalg.inv(covariance + ridge))
            # The two scores on these digits, as `read` computes them, for their spreads.
            logits.append(reader.features[-1](hidden))
            squared = squared + nearest_mean(hidden, mean, precision[-1]) / len(net.readers)
    energy = guard.SCORES["energy"](torch.stack(logits).double())
    mahalanobis = squared.clamp_min(1e-12).log()
    return Bank(normalized, means, precision, float(energy.std() / mahalanobis.std()))


def row(name: str, limits: guard.Limits, rates: dict) -> str:
    d = rates["digits"]
    right = " ".join(f"{d[n]['read_right_flagged']:>5}" for n in d)
    chosen = guard_fit.chosen_mean(rates)
    return (
        f"{name:<28} {chosen:>6.2f} {rates['pen_characters']['not_a_digit']:>6} "
        f"{rates['doodles']['not_a_digit']:>6} {d['pen']['misread_flagged']:>6} {right}  "
        f"w {limits.weight:g}, limit {limits.max_odds:.3f}, agreement {limits.min_agreement:.2g}"
    )


def main() -> None:
    p = guard_fits.guard_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    args = p.parse_args()
    torch.set_num_threads(1)
    start = time.time()

    net = guard.load(args.guard or args.weights / guard.FOLDER).net
    bank = digit_bank(net, guard_data.load)
    splits = guard_fit.held_out(guard_data.load)
    fields = guard_fit.fields_of(splits)
    models = guard_fit.readers(load_pretrained(args.weights, networks=args.networks))
    reads = {key: read(net, f, bank) for key, f in fields.items()}
    readings = {key: guard_fit.reading(models, f) for key, f in fields.items()}
    print(f"read every set in {time.time() - start:.0f} s", file=sys.stderr)

    def scored(score: str) -> dict[str, tuple[dict, dict]]:
        """{split: (its digit sets, its non-digit sets)}, judged by `score` alone."""
        judged = {key: (r.p, {score: SCORES[score](r).numpy()}) for key, r in reads.items()}
        return guard_fit.judged_sets(splits, judged, readings)

    print(
        f"choosing split, {args.networks} networks, % (limits chosen on it, fit.choose): mean of "
        "characters and kinds, characters, kinds, misread pen digits flagged, read right flagged "
        f"({', '.join(guard_fit.BUDGETED)})"
    )
    chosen = {}
    for score in SCORES:
        digits, others = scored(score)["choose"]
        limits = guard_fit.choose(digits, others, scores=(score,))
        rates = guard_fit.split_rates(digits, others, limits)
        misread = rates["digits"]["pen"]["misread_flagged"]
        chosen[score] = (limits, guard_fit.chosen_mean(rates), misread)
        print(row(score, limits, rates), flush=True)

    enough = [s for s, c in chosen.items() if c[2] >= guard.GOALS["misread_flagged"]]
    best = max(enough or chosen, key=lambda s: chosen[s][1:])
    print(f"\npicked on the choosing split: {best}")
    table = importlib.util.spec_from_file_location("guard_benchmark", ROOT / "benchmarks/guard.py")
    benchmark = importlib.util.module_from_spec(table)
    table.loader.exec_module(benchmark)
    for score in dict.fromkeys(["background", best]):
        limits = chosen[score][0]
        rates = guard_fit.split_rates(*scored(score)["report"], limits)
        print(f"\nmeasuring split (validation), {score}: limits {json.dumps(vars(limits))}")
        print("\n".join(benchmark.table(rates)))


if __name__ == "__main__":
    main()
