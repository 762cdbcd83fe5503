"""Model cards (README.md) for exported weights: one per variant and one for the whole repo.

Cards are rendered from the exported `config.json` files alone (the selected run's record and
the study's mean ± std for that variant), so a card can never disagree with the config beside
it. Metadata is huggingface_hub's `ModelCardData` with `EvalResult`s, which the Hub reads into
the model-index; the body is plain Markdown built here (no Jinja template).
"""

from __future__ import annotations

import json

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..core.checkout import source_url
from ..core.config import UNKNOWN
from ..core.data import SYNTHETIC
from ..core.fmt import as_printed, fmt, md_table, pct
from ..core.models import VARIANTS
from ..core.weights import StudySummary, VariantConfig
from .study import Study

TAGS = ["pytorch", "safetensors", "mnist", "siamese-network", "auxiliary-loss", "digit-comparison"]
# Atop every card of networks trained on synthetic_mnist's random digits (a dry run's), which
# also claim no dataset and no results in the card's metadata.
SYNTHETIC_NOTE = (
    "**Synthetic data: not a model of digits.** These networks trained on random images with "
    "random "
    "labels, and were scored on more of them (`digitpair-train study --dry-run`, a check of the "
    "pipeline): their accuracies measure nothing, and `digitpair-train push` refuses to upload "
    "them."
)


def trained_from(config: VariantConfig) -> str:
    """Which code trained the run, as its record holds it: a commit, or uncommitted changes on
    one."""
    p = config.provenance
    if p is None or p.commit == UNKNOWN:
        return "The code it trained from was not recorded."
    if p.dirty is True:
        return f"Trained from uncommitted changes on top of commit `{p.commit}` (not held by git)."
    if p.dirty == UNKNOWN:
        return (
            f"Trained at commit `{p.commit}` (whether with uncommitted changes was not recorded)."
        )
    return f"Trained from commit `{p.commit}`, as committed."


def _mean_std(summary: StudySummary, key: str) -> str:
    return fmt(getattr(summary, f"{key}_mean"), getattr(summary, f"{key}_std"))


def _result(value: float, split: str, name: str) -> EvalResult:
    return EvalResult(
        task_type="image-classification",
        task_name="Digit-pair comparison (first <= second)",
        dataset_type="ylecun/mnist",
        dataset_name="MNIST digit pairs, 14x14 (EE-559 generate_pair_sets)",
        dataset_split=split,
        metric_type="accuracy",
        metric_value=round(value, 2),
        metric_name=name,
    )


def synthetic(config: VariantConfig) -> bool:
    """Whether an exported variant's run trained on synthetic digits, as its recorded provenance
    says."""
    return config.provenance is not None and config.provenance.data == SYNTHETIC


def _card(
    body: str, model_name: str, results: list[EvalResult], synthetic_data: bool = False
) -> ModelCard:
    tags = [t for t in TAGS if t != "mnist"] + ["synthetic-data"] if synthetic_data else TAGS
    data = ModelCardData(
        license="mit",
        library_name="pytorch",
        pipeline_tag="image-classification",
        tags=tags,
        datasets=None if synthetic_data else ["ylecun/mnist"],
        metrics=["accuracy"],
        model_name=model_name,
        eval_results=None if synthetic_data else results or None,
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def _recipe(config: VariantConfig, head: str | None = None) -> str:
    """The run's recipe in words; `head`: the set's, where the config is simple_cnn's (no head of
    its own)."""
    c = config.train_config
    ensemble = (
        f"an ensemble of {c.members} networks (different initialisations, the same pairs; their "
        "digit "
        "distributions averaged, then compared by the order rule), each with "
        if c.members > 1
        else ""
    )
    return (
        f"{ensemble}`{c.encoder}` encoder, `{head or c.head}` comparison head, {c.optimizer}, lr "
        f"{c.lr:g}, batch {c.batch_size}, "
        f"{c.epochs} epochs, {c.schedule} schedule, augmentation `{c.augmentation}`, {c.precision} "
        "arithmetic"
    )


def _epoch(config: VariantConfig) -> str:
    """Which epoch the checkpoint holds, and what chose it."""
    c, m = config.train_config, config.metrics
    if c.selection == "last":
        return (
            f"the last epoch ({c.epochs}) kept, no epoch selected "
            "(the recipe was chosen beforehand on validation pairs)"
        )
    which = "each member at its epoch" if c.members > 1 else f"epoch {m.selected_epoch}"
    return f"{which} kept on validation"


def _usage(repo_id: str | None, name: str, source: str | None, head: str) -> list[str]:
    # Without a repo id the card can't know where it will be published: it loads the folder it is
    # in.
    networks = ', networks="report"' if head == "fc" else ""  # the fc/ set of the layout
    where = (
        f'"{repo_id}"{networks})   # {{name: model}}, from the Hub'
        if repo_id
        else f'"weights"{networks})   # {{name: model}}, from this folder (downloaded or exported)'
    )
    code = f"[the digitpair project]({source})" if source else "the digitpair project"
    return [
        "## Usage",
        "",
        f"Needs the `digitpair` package: {code}, installed with `pip install -e .` in a checkout. "
        "The networks are defined in its `digitpair/core/models.py`.",
        "",
        "```python",
        "import torch, digitpair",
        f"models = digitpair.load_pretrained({where}",
        f'pred = models["{name}"].predict(torch.zeros(1, 2, 14, 14))   # (N, 2, 14, 14) float, raw '
        "0-255 pixels",
        "pred.p_leq, pred.digit_probs   # (N,) P(first <= second); (N, 2, 10) or None",
        "```",
        "",
    ]


def _limitations(config: VariantConfig) -> list[str]:
    c, m = config.train_config, config.metrics
    train, test = (
        ("random images", "random images") if synthetic(config) else ("MNIST-train", "MNIST-test")
    )
    return [
        "## Limitations",
        "",
        "- Input is pairs of 14x14 MNIST-style digits: white strokes on black, raw 0-255, centred "
        "like MNIST's "
        "28x28 digits, 2x2 average-pooled. Drawings, photos and dark-on-light images need the "
        "app's "
        "preprocessing first (`digitpair.core.drawing.preprocess`), or the predictions mean "
        "nothing.",
        f"- Each model is trained on {m.train_pairs} pairs from {train} ("
        + (
            f"{c.n_pairs} drawn, {c.val_pairs} held out to choose the epoch"
            if c.val_pairs
            else "all that were drawn; the recipe and its epoch count were chosen beforehand on "
            "validation pairs"
        )
        + f") and tested on {m.test_pairs} pairs from {test}. Real drawings are not MNIST: "
        "`benchmarks/other_writers.py` measures other writers' digits, see the project README.",
        (
            "- An exported checkpoint is one run, chosen for its validation accuracy: that number "
            "is the best of "
            "the study's rounds and so optimistic. The study's mean ± std is what the recipe "
            "achieves."
            if c.val_pairs
            else "- An exported checkpoint is one run, the first round's, which no data chose: the "
            "study's "
            "mean ± std is what the recipe achieves, and this run is one draw from it."
        ),
        "- `shared` and `unshared` are never told what a digit is: their encoders' 10 outputs are "
        "an ordering "
        "code, not digit classes, and they return no digit probabilities.",
        *(
            [
                "- The accuracies above were measured in the run's bf16 arithmetic (autocast); "
                "`predict` runs in "
                "fp32, whose answers differ on a few pairs (a few tenths of a point of accuracy)."
            ]
            if c.precision == "bf16"
            else []
        ),
        "",
    ]


def variant_card(config: VariantConfig, repo_id: str | None = None) -> ModelCard:
    """The card of one exported variant, from its config.json."""
    name, m, s = config.variant, config.metrics, config.study_summary
    n = s.rounds
    results = [
        _result(v, split, label)
        for v, split, label in (
            (m.test_acc, "test", "test pair accuracy (%), this checkpoint"),
            (m.val_acc, "validation", "validation pair accuracy (%), this checkpoint"),
            (s.test_acc_mean, "test", f"test pair accuracy (%), study mean over {n} rounds"),
            (m.test_digit_acc, "test", "test digit accuracy (%), this checkpoint"),
        )
        if v is not None
    ]
    rows = (
        [("validation pair accuracy (%)", m.val_acc, _mean_std(s, "val_acc"))]
        if m.val_acc is not None
        else []
    )
    rows.append(("test pair accuracy (%)", m.test_acc, _mean_std(s, "test_acc")))
    if VARIANTS[name].digit_loss:
        rows.append(("test digit accuracy (%)", m.test_digit_acc, _mean_std(s, "test_digit_acc")))
    synthetic_data = synthetic(config)
    lines = [
        f"# digitpair `{name}`",
        "",
        *([SYNTHETIC_NOTE, ""] if synthetic_data else []),
        f"Is the first of two handwritten digits smaller than or equal to the second? `{name}`: "
        f"{VARIANTS[name].description}. {config.parameters:,} parameters. One of five variants "
        "in this repo (see its top-level README).",
        "",
        "## This checkpoint",
        "",
        f"Run `{config.run}` of study `{config.study}`, setting `{config.setting}` "
        f"({_recipe(config)}); "
        f"{_epoch(config)}. Chosen among the study's {n} runs of this "
        f"variant in that setting as {config.run_selection}.",
        "",
        *md_table(
            ["metric", "this checkpoint", f"study: mean ± std over {n} rounds"],
            [[label, pct(value), summary] for label, value, summary in rows],
        ),
    ]
    lines += [
        "",
        f"{trained_from(config)} Exported by `digitpair-train export` at commit `{config.commit}`.",
        "",
    ]
    lines += _usage(repo_id, name, source_url(), config.train_config.head)
    lines += [
        "## Training config",
        "",
        "```json",
        json.dumps(config.train_config.to_dict(), indent=2),
        "```",
        "",
    ]
    lines += _limitations(config)
    return _card("\n".join(lines), f"digitpair-{name}", results, synthetic_data)


def _reference_columns(reference: Study | None) -> list[tuple[str, dict]]:
    """[(column header, {variant: [mean, std]})] for each table of the 2020 report's numbers."""
    if reference is None:
        return []
    columns = []
    for setting, table in reference.reference.items():
        if isinstance(table, dict):  # skips "note"
            cfg = reference.settings.get(setting)
            label = f"{cfg.optimizer}, augmentation {cfg.augmentation}" if cfg else setting
            columns.append((f"2020 report ({label})", table))
    return columns


def repo_card(
    configs: dict[str, VariantConfig],
    study: Study,
    reference: Study | None = None,
    repo_id: str | None = None,
) -> ModelCard:
    """The repo's top-level card: the study's results table for the exported setting, usage,
    limitations."""
    first = next(iter(configs.values()))
    # The set's head: its pair networks' (simple_cnn compares in code, the order rule, in either
    # set).
    head = "fc" if any(c.train_config.head == "fc" for c in configs.values()) else "order"
    ref = _reference_columns(reference)
    results = [
        _result(
            c.study_summary.test_acc_mean,
            "test",
            f"{name}: test pair accuracy (%), study mean over {c.study_summary.rounds} rounds",
        )
        for name, c in configs.items()
        if c.study_summary.test_acc_mean is not None
    ]
    header = [
        "variant",
        "parameters",
        "test pair acc. (%)",
        "validation pair acc. (%)",
        "test digit acc. (%)",
        "rounds",
        "exported run: val / test (%)",
    ] + [h for h, _ in ref]
    synthetic_data = any(synthetic(c) for c in configs.values())
    lines = [
        "# digitpair: is the first digit <= the second?",
        "",
        *([SYNTHETIC_NOTE, ""] if synthetic_data else []),
        "Five small CNNs for the EPFL EE-559 (2020) mini-project 1 task: two 14x14 MNIST digits as "
        "a "
        "2-channel image, predict whether the first is <= the second, learning from 1000 pairs. "
        "The "
        "variants answer the study's questions: does weight sharing (a siamese encoder) help, and "
        "do "
        "auxiliary digit losses help?",
        "",
        "## Files",
        "",
        "One folder per variant, each with `model.safetensors` (the weights), `config.json` (the "
        "variant, "
        "its training config, the selected run's metrics and the study's summary) and `README.md` "
        "(its card):",
        "",
    ]
    lines += [f"- `{name}/`: {VARIANTS[name].description}" for name in configs]
    lines += [
        "",
        "Two sets share this layout: our networks, which compare the two digit distributions with "
        "the "
        "order head P(a <= b) = sum_{i <= j} p_a(i) p_b(j), at the top level, and the 2020 "
        "report's "
        "networks, whose siamese variants compare with one fully connected layer on the two 10-way "
        "outputs (Linear(20, 2)), in `fc/` with a card of their own: "
        '`digitpair.load_pretrained(repo, networks="report")`. This card is the one of the '
        f"`{head}`-head set.",
        "",
        "Beside them, `guard/` (`model.safetensors`, `guard.json`): the 'not a digit' guard "
        "the app judges drawings by, a small network of its own fitted for these very "
        "networks (`digitpair-train fit-guard`; `guard.json` records their fingerprints, its "
        "limits and its rates on held-out writers); `load_pretrained` loads it with them.",
    ]
    setting = first.setting
    lines += [
        "",
        f"## Results: study `{study.name}`, setting `{setting}`",
        "",
        f"{study.description.strip()}",
        "",
        f"Setting `{setting}`: {_recipe(first, head)}. Accuracy in percent, mean ± sample std over "
        "rounds; "
        "each round draws fresh pairs and a fresh initialisation. Per variant, the exported "
        "weights are "
        f"{first.run_selection}. Computed from the run records by "
        f"`digitpair-train export` at commit `{first.commit}`.",
        "",
    ]
    table = []
    for name, c in configs.items():
        s, m = c.study_summary, c.metrics
        cells = [
            f"`{name}`",
            f"{c.parameters:,}",
            _mean_std(s, "test_acc"),
            _mean_std(s, "val_acc"),
            _mean_std(s, "test_digit_acc"),
            str(s.rounds),
            f"`{c.run}`: {pct(m.val_acc)} / {pct(m.test_acc)}",
        ]
        cells += [as_printed(printed.get(name)) for _, printed in ref]
        table.append(cells)
    lines += md_table(header, table) + [""]
    if ref and reference.reference.get("note"):
        lines += [
            "About the 2020 report's numbers: " + " ".join(reference.reference["note"].split()),
            "",
        ]
    lines += _usage(repo_id, "shared_aux", source_url(), head)
    lines += _limitations(first)
    return _card("\n".join(lines), f"digitpair-{study.name}", results, synthetic_data)
