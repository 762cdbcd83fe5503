"""The page's networks and guard in the form it serves them in (`page.served.serving`: each
ensemble's members and the guard's readers stacked into one network, every weight in
channels-last) against the same networks one by one in channels-last and as they load (one by one,
contiguous, as saved): one `/compare` request (`app.compare`, as benchmarks/bench_app.py times it)
in each form, alternating in one process, median ms and their ratios to the form as loaded; and
whether any answer changes from the form as loaded, over every pair of the examples' digits. Then
each network of ours alone, stacked and one by one, both in channels-last: an ensemble's answer to
one pair (`predict`), the guard's logits for two drawings.

    python benchmarks/serving.py [--requests 300]
"""

from __future__ import annotations

import argparse
import copy
import sys
from itertools import product
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # app.py is a script at the repo root, not part of the package

import torch  # noqa: E402

from benchmarks.bench_app import medians_ms  # noqa: E402
from digitpair.page.served import load_set, serving  # noqa: E402


def forms(networks: str) -> dict[str, object]:
    """{form: one set of networks in it}: as served, one by one in channels-last, as loaded."""
    loaded = load_set(networks=networks)
    channels_last = copy.deepcopy(loaded)
    for net in channels_last.nets:
        net.to(memory_format=torch.channels_last)
    return {"served": serving(loaded), "channels-last": channels_last, "as loaded": loaded}


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

    served = app.SETS
    files = sorted((ROOT / "examples").glob("pair*_*.png"))
    upload = lambda path: {"path": str(path), "meta": {"_type": "gradio.FileData"}}  # noqa: E731
    pairs = [(upload(a), upload(b)) for a, b in product(files, files)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), as app.py serves\n")
    print(
        "| networks | served ms | channels-last ms | as loaded ms | served / as loaded "
        "| channels-last / as loaded | pairs | largest P(<=) change "
        "| verdicts, digits or judgements changed |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for networks in served:
        sets = forms(networks)
        if not sets["as loaded"].models:
            continue
        answers = {}
        for name, form in sets.items():
            app.SETS = {**served, networks: form}
            answers[name] = [app.compare(*pair, networks) for pair in pairs]
        loaded = answers.pop("as loaded")
        change = max(
            abs(model["p_leq"] - b["models"][variant]["p_leq"])
            for form in answers.values()
            for a, b in zip(form, loaded)
            for variant, model in a["models"].items()
        )
        changed = sum(said(a) != said(b) for form in answers.values() for a, b in zip(form, loaded))
        first, second = upload(files[0]), upload(files[3])  # two pairs' digits: judged

        def request(form, networks=networks):
            def call():
                app.SETS = {**served, networks: form}
                return app.compare(first, second, networks)

            return call

        ms = medians_ms({name: request(form) for name, form in sets.items()}, args.requests)
        columns = [f"{t:.1f}" for t in ms.values()] + [
            f"{ms[name] / ms['as loaded']:.2f}" for name in ("served", "channels-last")
        ]
        print(f"| {networks} | {' | '.join(columns)} | {len(pairs)} | {change:.1e} | {changed} |")
    app.SETS = served
    print("\n| ours, alone | stacked ms | one by one ms | ratio |\n| --- | --- | --- | --- |")
    sets = forms("ours")
    pair = torch.rand(1, 2, 14, 14, generator=torch.Generator().manual_seed(0)) * 255
    alone = {
        name: (model.predict, sets["channels-last"].models[name].predict, pair)
        for name, model in sets["served"].models.items()
    }
    if sets["served"].judge:
        drawings = pair[0].repeat_interleave(2, -1).repeat_interleave(2, -2)  # (2, 28, 28)
        guards = (sets["served"].judge.guard.net, sets["channels-last"].judge.guard.net)
        alone["guard"] = (guards[0].logits, guards[1].logits, drawings)
    with torch.inference_mode():
        for name, (stacked, one_by_one, x) in alone.items():
            ms = medians_ms({"s": lambda: stacked(x), "o": lambda: one_by_one(x)}, args.requests)
            print(f"| {name} | {ms['s']:.2f} | {ms['o']:.2f} | {ms['s'] / ms['o']:.2f} |")


if __name__ == "__main__":
    main()
