"""Choose the page's "not a digit" / "not sure" rule (digitpair/abstain.py) on validation data, and measure it.

Real digits, all validation (used for choices), none from the MNIST test split:
- MNIST: `--mnist` digits of the MNIST training split that no served network trained on (each
  network's config.json names its round, `data_seed` and `n_pairs`; that round's 2 n_pairs
  digits are left out, checked against digitpair.data's pairs), drawn onto a 280x280 canvas as
  a person's drawing is (black on white, enlarged 10x), then `drawing.preprocess`;
- the other writers of digitpair/writers.py: USPS (7291) and UCI (1797), as the app sees them.
Non-digits, `--per-kind` of each kind, drawn with PIL on the app's 280x280 paper with pen widths
of 16-32 px (the app's brush: 24 px): dots (a dab, possibly dragged up to 1.5 pen widths), dots
(2-6 dabs), blobs (filled shapes), fills (a patch coloured in), scribbles (a smooth curve through
7-14 random points), zigzags, letters (25 whose shapes are not digits': no O, I, l, S, Z, B, G,
b, g, q, which a person reads as 0, 1, 2, 5, 6, 8, 9), shapes (triangle, square, plus, hash, star,
smiley, arrow, heart), and crossed-out digits (unseen MNIST digits with an X, a zigzag or 2-4
lines through them). A drawing `preprocess` refuses (a dot under 8 % of the box) counts as caught:
the page says so.

Every drawing is read in both boxes (the unshared networks read each box with their own encoder),
both counted. Even-numbered items are the choice half, odd ones the check half. The limits are
searched on the choice half: the most non-digits caught (the mean over kinds, each kind weighed
alike) while at most TARGET of MNIST's digits and of the USPS digits the networks read right are
flagged; then `min_pair_share`, which only picks the wording, the one that best says "unsure" to
flagged real digits and "not a digit" to flagged non-digits. Rates are given for both halves;
`tradeoff` is the check half's catch at looser budgets, the same search. The main shapes are the
training digits' (`SHAPES`, 20 of 10, 20, 30 compared by this search).

    python benchmarks/not_a_digit.py [--weights weights] [--mnist 10000] [--per-kind 400] [--seed 0]

writes benchmarks/not_a_digit.json (the rule per set of networks, their fingerprints, the rates)
and the README's block between the not-a-digit markers. Rerun it after exporting new weights:
the app judges only the networks the file was written for.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # run as a script from anywhere: this checkout's digitpair

from digitpair import abstain, writers                                   # noqa: E402
from digitpair.app_logic import load_models, readers                      # noqa: E402
from digitpair.data import MNIST                                          # noqa: E402
from digitpair.drawing import DrawingError, preprocess                    # noqa: E402
from digitpair.provenance import git_commit                               # noqa: E402
from digitpair.report import replace_block                                # noqa: E402
from digitpair.weights import CONFIG_NAME, NETWORKS, read_config          # noqa: E402

OUT = ROOT / "benchmarks" / "not_a_digit.json"
README = ROOT / "README.md"
BEGIN, END = "<!-- not-a-digit:begin (python benchmarks/not_a_digit.py) -->", "<!-- not-a-digit:end -->"
SIZE, PENS = 280, (16, 32)   # the app's paper; pen widths in px
SHAPES = 20
TARGET = 0.8   # % of real digits flagged: the search's budget, a margin under abstain.GOALS' 1 %
BUDGETS = (2.0, 5.0, 10.0, 20.0)
LEVELS = np.array([0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0])   # % of MNIST choice digits, at TARGET
PIECES = (2, 3, 4, 5, 196)   # 196: never (a 14x14 image has at most 98 pieces)
SHARES = np.round(np.arange(0.5, 1.001, 0.05), 2)


# --- non-digits, drawn as a visitor would --------------------------------------------------

def pen(draw: PIL.ImageDraw.ImageDraw, points, width: int) -> None:
    """A stroke of the round brush through `points`."""
    draw.line(points, fill=0, width=width, joint="curve")
    for x, y in (points[0], points[-1]):
        draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=0)


def smooth(points, steps: int = 10) -> list[tuple[float, float]]:
    """A Catmull-Rom curve through `points`, as a hand draws through them."""
    p = np.array([points[0], *points, points[-1]], dtype=float)
    t = np.linspace(0, 1, steps, endpoint=False)[:, None]
    curve = [0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2 + (3 * p1 - p0 - 3 * p2 + p3) * t ** 3)
             for p0, p1, p2, p3 in zip(p, p[1:], p[2:], p[3:])]
    return [tuple(q) for q in np.concatenate(curve)] + [tuple(p[-2])]


def paper() -> tuple[PIL.Image.Image, PIL.ImageDraw.ImageDraw]:
    image = PIL.Image.new("L", (SIZE, SIZE), 255)
    return image, PIL.ImageDraw.Draw(image)


def width(rng) -> int:
    return int(rng.integers(PENS[0], PENS[1] + 1))


def dot(rng):
    image, draw = paper()
    x, y = rng.uniform(40, 240, 2)
    w, length, angle = width(rng), rng.uniform(0, 1.5), rng.uniform(0, 2 * math.pi)
    pen(draw, [(x, y), (x + length * w * math.cos(angle), y + length * w * math.sin(angle))], w)
    return image


def dots(rng):
    image, draw = paper()
    w = width(rng)
    for _ in range(rng.integers(2, 7)):
        x, y = rng.uniform(30, 250, 2)
        pen(draw, [(x, y), (x + rng.uniform(-4, 4), y + rng.uniform(-4, 4))], w)
    return image


def blob(rng):
    image, draw = paper()
    (cx, cy), radius, k = rng.uniform(90, 190, 2), rng.uniform(25, 100), rng.integers(5, 12)
    angles, radii = np.sort(rng.uniform(0, 2 * math.pi, k)), radius * rng.uniform(0.5, 1.0, k)
    corners = [(cx + r * math.cos(a), cy + r * math.sin(a)) for r, a in zip(radii, angles)]
    draw.polygon(smooth(corners + corners[:1], 6), fill=0)
    return image


def fill(rng):
    """A patch coloured in with back-and-forth strokes."""
    image, draw = paper()
    w, (x0, y0), (wide, high) = width(rng), rng.uniform(30, 140, 2), rng.uniform(60, 200, 2)
    n = int(high / (0.7 * w)) + 1
    points = [(x0 + wide * side + rng.uniform(-10, 10), y0 + high * (i + side / 2) / n) for i in range(n) for side in (0, 1)]
    pen(draw, [tuple(np.clip(p, 10, SIZE - 10)) for p in points], w)
    return image


def scribble(rng):
    image, draw = paper()
    pen(draw, smooth([tuple(rng.uniform(30, 250, 2)) for _ in range(rng.integers(7, 15))]), width(rng))
    return image


def zigzag(rng):
    image, draw = paper()
    k, x0 = rng.integers(4, 10), rng.uniform(20, 120)
    x1, (y0, y1) = x0 + rng.uniform(100, 150), np.sort(rng.uniform(40, 240, 2))
    pen(draw, [(x0 + (x1 - x0) * i / (k - 1) + rng.uniform(-8, 8), (y0 if i % 2 else y1) + rng.uniform(-15, 15))
               for i in range(k)], width(rng))
    return image


# Strokes in the unit square (x right, y down), jittered and transformed as a hand would draw them.
LETTERS = {
    "A": [[(0.15, 0.9), (0.5, 0.1), (0.85, 0.9)], [(0.3, 0.6), (0.7, 0.6)]],
    "C": [[(0.8, 0.2), (0.5, 0.1), (0.2, 0.3), (0.2, 0.7), (0.5, 0.9), (0.8, 0.8)]],
    "E": [[(0.8, 0.1), (0.2, 0.1), (0.2, 0.9), (0.8, 0.9)], [(0.2, 0.5), (0.65, 0.5)]],
    "F": [[(0.8, 0.1), (0.2, 0.1), (0.2, 0.9)], [(0.2, 0.5), (0.65, 0.5)]],
    "H": [[(0.2, 0.1), (0.2, 0.9)], [(0.8, 0.1), (0.8, 0.9)], [(0.2, 0.5), (0.8, 0.5)]],
    "K": [[(0.2, 0.1), (0.2, 0.9)], [(0.8, 0.1), (0.2, 0.55), (0.8, 0.9)]],
    "M": [[(0.1, 0.9), (0.2, 0.1), (0.5, 0.6), (0.8, 0.1), (0.9, 0.9)]],
    "N": [[(0.2, 0.9), (0.2, 0.1), (0.8, 0.9), (0.8, 0.1)]],
    "P": [[(0.2, 0.9), (0.2, 0.1), (0.7, 0.12), (0.8, 0.3), (0.7, 0.48), (0.2, 0.5)]],
    "R": [[(0.2, 0.9), (0.2, 0.1), (0.7, 0.12), (0.8, 0.3), (0.7, 0.48), (0.2, 0.5), (0.8, 0.9)]],
    "T": [[(0.1, 0.1), (0.9, 0.1)], [(0.5, 0.1), (0.5, 0.9)]],
    "U": [[(0.2, 0.1), (0.2, 0.7), (0.5, 0.9), (0.8, 0.7), (0.8, 0.1)]],
    "V": [[(0.15, 0.1), (0.5, 0.9), (0.85, 0.1)]],
    "W": [[(0.05, 0.1), (0.25, 0.9), (0.5, 0.35), (0.75, 0.9), (0.95, 0.1)]],
    "X": [[(0.15, 0.1), (0.85, 0.9)], [(0.85, 0.1), (0.15, 0.9)]],
    "Y": [[(0.15, 0.1), (0.5, 0.5), (0.85, 0.1)], [(0.5, 0.5), (0.5, 0.9)]],
    "e": [[(0.2, 0.6), (0.8, 0.6), (0.75, 0.4), (0.5, 0.3), (0.25, 0.45), (0.25, 0.75), (0.5, 0.9), (0.8, 0.82)]],
    "h": [[(0.25, 0.05), (0.25, 0.9)], [(0.25, 0.55), (0.5, 0.4), (0.75, 0.5), (0.75, 0.9)]],
    "k": [[(0.25, 0.05), (0.25, 0.9)], [(0.75, 0.4), (0.25, 0.65), (0.75, 0.9)]],
    "m": [[(0.1, 0.9), (0.1, 0.4), (0.3, 0.35), (0.5, 0.45), (0.5, 0.9)], [(0.5, 0.45), (0.7, 0.35), (0.9, 0.45), (0.9, 0.9)]],
    "n": [[(0.25, 0.9), (0.25, 0.4)], [(0.25, 0.5), (0.5, 0.38), (0.75, 0.5), (0.75, 0.9)]],
    "r": [[(0.3, 0.9), (0.3, 0.4)], [(0.3, 0.55), (0.5, 0.4), (0.75, 0.42)]],
    "w": [[(0.1, 0.4), (0.3, 0.9), (0.5, 0.55), (0.7, 0.9), (0.9, 0.4)]],
    "x": [[(0.2, 0.4), (0.8, 0.9)], [(0.8, 0.4), (0.2, 0.9)]],
    "y": [[(0.2, 0.4), (0.5, 0.75)], [(0.8, 0.4), (0.35, 1.0)]],
}
FIGURES = {
    "triangle": [[(0.5, 0.1), (0.9, 0.85), (0.1, 0.85), (0.5, 0.1)]],
    "square": [[(0.15, 0.15), (0.85, 0.15), (0.85, 0.85), (0.15, 0.85), (0.15, 0.15)]],
    "plus": [[(0.5, 0.1), (0.5, 0.9)], [(0.1, 0.5), (0.9, 0.5)]],
    "hash": [[(0.35, 0.1), (0.3, 0.9)], [(0.7, 0.1), (0.65, 0.9)], [(0.1, 0.35), (0.9, 0.35)], [(0.1, 0.65), (0.9, 0.65)]],
    "star": [[(0.5, 0.05), (0.65, 0.9), (0.1, 0.35), (0.9, 0.35), (0.35, 0.9), (0.5, 0.05)]],
    "smiley": [[(0.5, 0.1), (0.85, 0.3), (0.85, 0.7), (0.5, 0.9), (0.15, 0.7), (0.15, 0.3), (0.5, 0.1)],
               [(0.35, 0.38), (0.36, 0.4)], [(0.65, 0.38), (0.66, 0.4)], [(0.3, 0.62), (0.5, 0.75), (0.7, 0.62)]],
    "arrow": [[(0.1, 0.5), (0.9, 0.5)], [(0.65, 0.25), (0.9, 0.5), (0.65, 0.75)]],
    "heart": [[(0.5, 0.9), (0.1, 0.45), (0.25, 0.15), (0.5, 0.3), (0.75, 0.15), (0.9, 0.45), (0.5, 0.9)]],
}


def strokes(rng, shape) -> PIL.Image.Image:
    """Unit-square strokes at a random size, place, slant and aspect, each point a little off."""
    image, draw = paper()
    w, size, centre = width(rng), rng.uniform(120, 240), rng.uniform(110, 170, 2)
    turn, slant, aspect = rng.uniform(-0.25, 0.25), rng.uniform(-0.25, 0.25), rng.uniform(0.75, 1.25)
    transform = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]]) @ [[aspect, slant], [0, 1]]
    for stroke in shape:
        points = [tuple(centre + size * transform @ (np.array(p) - 0.5) + rng.normal(0, 0.02 * size, 2)) for p in stroke]
        pen(draw, smooth(points, 8) if len(points) > 2 and rng.random() < 0.5 else points, w)
    return image


def letter(rng):
    return strokes(rng, LETTERS[rng.choice(sorted(LETTERS))])


def figure(rng):
    return strokes(rng, FIGURES[rng.choice(sorted(FIGURES))])


def as_drawing(digit: np.ndarray) -> PIL.Image.Image:
    """A 28x28 MNIST digit (white on black) as a person's drawing: black on white, the paper's size."""
    return PIL.Image.fromarray(255 - digit).resize((SIZE, SIZE), PIL.Image.Resampling.BILINEAR)


def crossed(rng, digit: np.ndarray):
    image = as_drawing(digit)
    draw, w, how = PIL.ImageDraw.Draw(image), width(rng), rng.integers(3)
    if how == 0:   # an X
        pen(draw, [tuple(rng.uniform(30, 80, 2)), tuple(rng.uniform(200, 250, 2))], w)
        pen(draw, [(rng.uniform(200, 250), rng.uniform(30, 80)), (rng.uniform(30, 80), rng.uniform(200, 250))], w)
    elif how == 1:   # a zigzag through it
        ys = rng.uniform(60, 220, 2)
        pen(draw, [(40 + 40 * i, ys[i % 2] + rng.uniform(-10, 10)) for i in range(6)], w)
    else:   # lines through it
        for y in np.linspace(rng.uniform(60, 100), rng.uniform(180, 220), rng.integers(2, 5)):
            pen(draw, [(rng.uniform(30, 70), y + rng.uniform(-10, 10)), (rng.uniform(210, 250), y + rng.uniform(-10, 10))], w)
    return image


KINDS = {"dot": dot, "dots": dots, "blob": blob, "fill": fill, "scribble": scribble, "zigzag": zigzag,
         "letter": letter, "shape": figure}   # + "crossed", which needs digits


# --- the data, as the networks see it -------------------------------------------------------

def seen_digits(weights: Path, mnist: MNIST) -> torch.Tensor:
    """Indices into MNIST-train of every digit a served network trained on (its round's 2 n_pairs
    digits, `MNIST.round_digits`)."""
    rounds = set()
    for sub in NETWORKS.values():
        for config in sorted((weights / sub).glob(f"*/{CONFIG_NAME}")):
            c = read_config(config).train_config
            rounds.add((c.data_seed, c.n_pairs))
    return torch.cat([mnist.round_digits(seed, n, 0)[0] for seed, n in sorted(rounds)]).unique()


def through_app(images) -> tuple[torch.Tensor, np.ndarray]:
    """Drawings -> ((N, 14, 14) as preprocessed, zeros where refused; (N,) bool: accepted)."""
    digits, accepted = [], []
    for image in images:
        try:
            digits.append(preprocess(np.asarray(image)))
            accepted.append(True)
        except DrawingError:
            digits.append(torch.zeros(14, 14))
            accepted.append(False)
    return torch.stack(digits), np.array(accepted)


def readings(models: dict, digits: torch.Tensor) -> torch.Tensor:
    """(N, 14, 14) -> (2N, r, 10): each drawing in the first box, then in the second, by each reader."""
    pairs = torch.stack([digits, digits], 1)
    probs = torch.stack([model.predict(pairs).digit_probs for model in models.values()], 2)   # (N, 2, r, 10)
    return torch.cat([probs[:, 0], probs[:, 1]])


# --- the search ---------------------------------------------------------------------------

def flags(rule: dict, ev: abstain.Evidence, shapes: abstain.Shapes, accepted=True) -> np.ndarray:
    """The judgements; a drawing `preprocess` refused is "not a digit" (the page says why)."""
    return np.where(accepted, abstain.judge(abstain.Rule(**rule, shapes=shapes), ev), abstain.NOT_A_DIGIT)


def choose(groups: dict, shapes, budget: float) -> dict:
    """The limits that catch the most choice-half non-digits with at most `budget` % of the
    MNIST digits and of the USPS digits read right flagged (see the module docstring)."""
    mnist = groups["mnist"]["choice"]
    # Level 0 is the limit that never flags: confidence under 0, more than all of the box solid,
    # further than any 0-1 image can be from the shapes (196 pixels).
    low = lambda values, q, off: off if q == 0 else float(np.quantile(values, q / 100))
    high = lambda values, q, off: off if q == 0 else float(np.quantile(values, 1 - q / 100))
    levels = LEVELS * budget / TARGET   # each limit may take up to 1.25 budgets alone: the union is what counts
    options = {"min_confidence": [low(mnist.confidence, q, 0.0) for q in levels],
               "max_solid": [high(mnist.solid, q, 1.0) for q in levels],
               "max_pieces": list(PIECES),
               "max_unexplained": [high(mnist.unexplained, q, 196.0) for q in levels]}
    # Each limit's flags, once: a candidate's flags are their union (the confidence limit flags
    # whatever the wording, so min_pair_share plays no part here).
    real = {"mnist": (mnist, slice(None)), "usps": (groups["usps"]["choice"], groups["usps"]["read_right"]["choice"])}
    sets = {**{name: ev for name, (ev, _) in real.items()}, **{k: groups[k]["choice"] for k in groups["kinds"]}}
    over = {name: {"min_confidence": [ev.confidence < t for t in options["min_confidence"]],
                   "max_solid": [ev.solid > t for t in options["max_solid"]],
                   "max_pieces": [ev.pieces > t for t in options["max_pieces"]],
                   "max_unexplained": [ev.unexplained > t for t in options["max_unexplained"]]} for name, ev in sets.items()}
    refused = {name: ~groups[name]["accepted"]["choice"] for name in sets}
    best, keys = None, list(options)
    for pick in itertools.product(*(range(len(options[k])) for k in keys)):
        flagged = {name: np.logical_or.reduce([refused[name], *(over[name][k][i] for k, i in zip(keys, pick))])
                   for name in sets}
        if any(100 * flagged[name][mask].mean() > budget for name, (_, mask) in real.items()):
            continue
        caught = np.mean([flagged[k].mean() for k in groups["kinds"]])
        score = (caught, -sum(flagged[name][mask].mean() for name, (_, mask) in real.items()))
        if best is None or score > best[0]:
            best = (score, {k: options[k][i] for k, i in zip(keys, pick)})
    rule = {**best[1], "min_pair_share": 1.0}
    # The wording: "unsure" for the flagged real digits, "not a digit" for the flagged non-digits.
    def wording(share):
        kinds = {name: flags({**rule, "min_pair_share": share}, ev, shapes, ~refused[name]) for name, ev in sets.items()}
        said_unsure = np.mean([(kinds[n][m] == abstain.UNSURE).sum() / max(1, (kinds[n][m] != abstain.DIGIT).sum())
                               for n, (_, m) in real.items()])
        said_not = np.mean([(kinds[k] == abstain.NOT_A_DIGIT).sum() / max(1, (kinds[k] != abstain.DIGIT).sum())
                            for k in groups["kinds"]])
        return (said_unsure + said_not) / 2
    rule["min_pair_share"] = float(max(SHARES, key=wording))
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in rule.items()}


def pct(part, whole) -> float | None:
    return None if whole == 0 else round(100 * part / whole, 2)


def rates(groups: dict, rule: dict, shapes, half: str) -> dict:
    """What `rule` does on one half, in % of `judged` (each drawing judged in both boxes): real
    digits flagged (and of those, how many the readers misread; of the misread, how many were
    flagged), non-digits caught (and said "not a digit"; `refused`: by preprocess, as a dot)."""
    out = {}
    for name in ("mnist", "usps", "uci"):
        g = groups[name]
        kinds, wrong = flags(rule, g[half], shapes, g["accepted"][half]), g["misread"][half]
        flagged = kinds != abstain.DIGIT
        out[name] = {"judged": int(len(kinds)), "flagged": pct(flagged.sum(), len(kinds)),
                     "unsure": pct((kinds == abstain.UNSURE).sum(), len(kinds)),
                     "flagged_misread": pct((flagged & wrong).sum(), flagged.sum()),
                     "read_right_flagged": pct((flagged & ~wrong).sum(), (~wrong).sum()),
                     "misread_flagged": pct((flagged & wrong).sum(), wrong.sum())}
    kinds_caught = {}
    for k in groups["kinds"]:
        g = groups[k]
        kinds = flags(rule, g[half], shapes, g["accepted"][half])
        kinds_caught[k] = {"judged": int(len(kinds)), "caught": pct((kinds != abstain.DIGIT).sum(), len(kinds)),
                           "not_a_digit": pct((kinds == abstain.NOT_A_DIGIT).sum(), len(kinds)),
                           "refused": pct((~g["accepted"][half]).sum(), len(kinds))}
    out["non_digits"] = {"caught": round(float(np.mean([v["caught"] for v in kinds_caught.values()])), 2),
                         "not_a_digit": round(float(np.mean([v["not_a_digit"] for v in kinds_caught.values()])), 2),
                         "kinds": kinds_caught}
    return out


def halves(values, n: int) -> dict:
    """Both boxes' items (2N, box-major) -> {"choice": even-numbered items, "check": odd-numbered}."""
    index = np.arange(2 * n) % n
    return {"choice": values[index % 2 == 0], "check": values[index % 2 == 1]}


def split(ev: abstain.Evidence, n: int) -> dict:
    fields = {f: halves(getattr(ev, f), n) for f in ev.__dataclass_fields__}
    return {half: abstain.Evidence(**{f: v[half] for f, v in fields.items()}) for half in ("choice", "check")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", type=Path, default=ROOT / "weights")
    p.add_argument("--mnist", type=int, default=10000, help="MNIST validation digits")
    p.add_argument("--per-kind", type=int, default=400, help="non-digits of each kind")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--readme", type=Path, default=README, help="rewrite its not-a-digit block ('' to skip)")
    args = p.parse_args()
    torch.set_num_threads(1)   # the app's setting; also makes the readings bit-reproducible

    mnist = MNIST()
    seen = seen_digits(args.weights, mnist)
    rng = np.random.default_rng(args.seed)
    unseen = np.setdiff1d(np.arange(len(mnist.train_images)), seen.numpy())
    chosen = rng.choice(unseen, args.mnist + args.per_kind, replace=False)
    val, to_cross = np.sort(chosen[: args.mnist]), chosen[args.mnist:]
    shapes = abstain.Shapes.fit(torch.nn.functional.avg_pool2d(mnist.train_images[seen].float()[:, None], 2)[:, 0], SHAPES)
    images = mnist.train_images.numpy()
    drawn = {"mnist": (through_app([as_drawing(images[i]) for i in val]), mnist.train_labels[val].numpy())}
    for w in (writers.load_usps(), writers.load_uci()):
        drawn[w.name] = ((w.inputs, np.ones(len(w), bool)), w.labels.numpy())
    for kind, draw in KINDS.items():
        drawn[kind] = (through_app([draw(rng) for _ in range(args.per_kind)]), None)
    drawn["crossed"] = (through_app([crossed(rng, images[i]) for i in to_cross]), None)
    kinds = [*KINDS, "crossed"]

    result = {"command": "python benchmarks/not_a_digit.py", "commit": git_commit(), "seed": args.seed,
              "data": {"mnist": f"{args.mnist} MNIST-train digits outside the served networks' {len(seen)} training digits",
                       "usps": "USPS train split (digitpair.writers)", "uci": "UCI digits (scikit-learn)",
                       "non_digits": f"{args.per_kind} of each of {', '.join(kinds)}",
                       "halves": "even-numbered items choose (choice), odd-numbered are measured (check); both validation"},
              "shapes": {"fitted_on": f"the {len(seen)} training digits", "k": SHAPES,
                         "mean": np.round(shapes.mean, 6).tolist(), "components": np.round(shapes.components, 6).tolist()},
              "sets": {}}
    shapes = abstain.Shapes(np.asarray(result["shapes"]["mean"]), np.asarray(result["shapes"]["components"]))   # as the app reads it
    for networks in NETWORKS:
        models = readers(load_models(str(args.weights), networks=networks).models)
        groups = {"kinds": kinds}
        for name, ((digits, accepted), labels) in drawn.items():
            probs = readings(models, digits)
            n = len(digits)
            ev = abstain.evidence(torch.cat([digits, digits]), probs, shapes)
            g = {**split(ev, n), "accepted": halves(np.concatenate([accepted, accepted]), n)}
            if labels is not None:
                g["misread"] = halves(probs.mean(1).argmax(1).numpy() != np.concatenate([labels, labels]), n)
                g["read_right"] = {h: ~g["misread"][h] for h in ("choice", "check")}
            groups[name] = g
        rule = choose(groups, shapes, TARGET)
        tradeoff = {f"{b:g}": rates(groups, choose(groups, shapes, b), shapes, "check")["non_digits"]["caught"]
                    for b in BUDGETS}
        result["sets"][networks] = {
            "readers": list(models), "fingerprints": {name: abstain.fingerprint(m) for name, m in models.items()},
            "rule": rule, "rates": {h: rates(groups, rule, shapes, h) for h in ("choice", "check")}, "tradeoff": tradeoff}
        print(networks, json.dumps(rule), json.dumps(result["sets"][networks]["rates"]["check"]["mnist"]),
              result["sets"][networks]["rates"]["check"]["non_digits"]["caught"], flush=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(abstain.rates_markdown(result))
    if str(args.readme):
        text = args.readme.read_text()
        args.readme.write_text(replace_block(text, BEGIN, END, abstain.rates_markdown(result)))
    print(f"wrote {args.out}" + (f" and {args.readme}'s not-a-digit block" if str(args.readme) else ""))


if __name__ == "__main__":
    main()
