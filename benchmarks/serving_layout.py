"""The page's networks and guard in the memory layout it serves them in (channels-last,
`page.served.serving_layout`) against the contiguous layout they load in: one `/compare`
request (`app.compare`, as benchmarks/bench_app.py times it) in each, alternating in one process,
median ms and their ratio; and whether any answer changes, over every pair of the examples' digits.

    python benchmarks/serving_layout.py [--requests 300]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from itertools import product
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # app.py is a script at the repo root, not part of the package

import torch  # noqa: E402


def contiguous(sets: dict) -> dict:
    """A copy of the served sets with every network and guard back in the contiguous layout."""
    sets = copy.deepcopy(sets)
    for loaded in sets.values():
        for net in loaded.nets:
            net.to(memory_format=torch.contiguous_format)
    return sets


def said(answer: dict) -> tuple:
    """What a `/compare` answer says in words: each variant's verdict and digits in order of
    likelihood, each drawing's judgement and its two digits."""
    models = [
        (model["first_is_leq"], [[d for d, _ in ds] for ds in (model["digits"] or {}).values()])
        for model in answer["models"].values()
    ]
    drawings = [
        (drawing["judgement"], [digit for digit, _ in drawing["digits"] or []])
        for drawing in answer["drawings"].values()
    ]
    return models, drawings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=300)
    args = p.parse_args()

    import app

    layouts = {"channels-last": app.SETS, "contiguous": contiguous(app.SETS)}
    files = sorted((ROOT / "examples").glob("pair*_*.png"))
    upload = lambda path: {"path": str(path), "meta": {"_type": "gradio.FileData"}}  # noqa: E731
    pairs = [(upload(a), upload(b)) for a, b in product(files, files)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), as app.py serves\n")
    print(
        "| networks | channels-last ms | contiguous ms | ratio | pairs | largest P(<=) change "
        "| verdicts, digits or judgements changed |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for networks, served in app.SETS.items():
        if not served.models:
            continue
        answers = {}
        for name, sets in layouts.items():
            app.SETS = sets
            answers[name] = [app.compare(*pair, networks) for pair in pairs]
        change = max(
            abs(model["p_leq"] - b["models"][variant]["p_leq"])
            for a, b in zip(*answers.values())
            for variant, model in a["models"].items()
        )
        changed = sum(said(a) != said(b) for a, b in zip(*answers.values()))
        times = {name: [] for name in layouts}
        first, second = upload(files[0]), upload(files[3])  # two pairs' digits: judged
        for i in range(10 + args.requests):  # the first 10 warm oneDNN's kernels up
            for name, sets in layouts.items():
                app.SETS = sets
                t = time.perf_counter()
                app.compare(first, second, networks)
                if i >= 10:
                    times[name].append(time.perf_counter() - t)
        ms = {name: 1000 * statistics.median(t) for name, t in times.items()}
        print(
            f"| {networks} | {ms['channels-last']:.1f} | {ms['contiguous']:.1f} "
            f"| {ms['channels-last'] / ms['contiguous']:.2f} | {len(pairs)} | {change:.1e} "
            f"| {changed} |",
            flush=True,
        )
    app.SETS = layouts["channels-last"]


if __name__ == "__main__":
    main()
