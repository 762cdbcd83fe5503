"""Publishing the pretrained weights: export a study's chosen runs to `weights/`, push it to the
Hub.

`weights/` is exactly what is uploaded, and what `load_pretrained` reads from either place:

    README.md                  the repo's card: the study's results table, usage, limitations
    <variant>/                 one per variant, registry order
        model.safetensors      the selected run's weights
        config.json            variant, training config, the run's metrics, the study's summary
        README.md              the variant's card
    guard/                     the "not a digit" guard fitted for them (digitpair/guard/__init__.py)
        model.safetensors      its network
        guard.json             its limits, the networks' fingerprints, its held-out rates

Export chooses, per variant, one finished run of the study's `main` setting by validation
accuracy only, or, where the runs trained on all their pairs and hold none back, the first round's
run, which no data chose (see `select_runs`): the test pairs never influence which weights ship.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from .. import guard
from ..core.fmt import pct_or_none
from ..core.models import VARIANTS
from ..core.weights import (
    CONFIG_NAME,
    NETWORKS,
    WEIGHTS_NAME,
    StudySummary,
    is_repo_id,
    load_weights,
    read_config,
    save_variant,
)
from ..guard.pretrained import load_pretrained
from . import records as rec
from .cards import repo_card, synthetic, variant_card
from .provenance import git_commit
from .records import RunRecord, Summary
from .report import aggregate
from .study import Study

CARD_NAME = "README.md"
SELECTION = (
    "the run with the best validation accuracy (ties: the lowest round); "
    "test accuracy plays no part in the choice"
)
SELECTION_ALL_PAIRS = (
    "the run of the lowest round: these runs trained on all their pairs and kept their last "
    "epoch, with no validation pairs to choose by, so no data chose it (a typical run, not the "
    "best)"
)


class PublishError(RuntimeError):
    """Export or push can't go on; the message says why and what to do."""


def select_runs(
    records: list[RunRecord], study: Study, setting: str | None = None
) -> dict[str, RunRecord]:
    """{variant: record} of the run to export among the finished runs of `setting` (default: the
    study's `main` one): the best validation accuracy, ties to the lowest round (deterministic, and
    independent of how many later rounds have finished); for runs that trained on all their pairs
    (val_pairs = 0), the lowest round's. Never test accuracy."""
    setting = setting or study.main
    chosen, missing = {}, []
    for name in VARIANTS:
        runs = rec.select(records, setting=setting, variant=name)
        if not runs:
            missing.append(name)
            continue
        if study.settings[setting].val_pairs == 0:
            chosen[name] = runs[0]
            continue
        if any(r.metrics.val_acc is None for r in runs):
            raise PublishError(
                f"some {setting!r} runs of {name} have no validation accuracy: "
                "export chooses on validation only, never on test accuracy"
            )
        chosen[name] = max(runs, key=lambda r: (r.metrics.val_acc, -r.round))
    if missing:
        raise PublishError(
            f"study {study.name!r} has no finished {setting!r} run of {', '.join(missing)}: "
            f"the exported weights need all five variants ({', '.join(VARIANTS)})"
        )
    return chosen


def export_config(record: RunRecord, summary: Summary, commit: str) -> dict:
    """What config.json holds besides what rebuilds the network (save_variant writes that): the
    VariantConfig fields of the run `record` and its cell's `summary`, exported at `commit`."""
    return {
        "description": VARIANTS[record.variant].description,
        "parameters": record.metrics.parameters,
        "study": record.study,
        "setting": record.setting,
        "round": record.round,
        "run": record.name,
        "run_selection": SELECTION_ALL_PAIRS if record.config.val_pairs == 0 else SELECTION,
        "train_config": record.config,
        "metrics": record.metrics,
        "provenance": record.provenance,
        "study_summary": StudySummary(
            **{f.name: getattr(summary, f.name) for f in dataclasses.fields(StudySummary)}
        ),
        "commit": commit,
    }


def export_study(
    study_dir: str | os.PathLike,
    dest: str | os.PathLike,
    reference: Study | None = None,
    repo_id: str | None = None,
    setting: str | None = None,
) -> list[Path]:
    """Write `dest/<variant>/{model.safetensors,config.json,README.md}` and `dest/README.md`, from
    `setting`'s runs (default: the study's main setting).

    Every run is checked (present, loadable) before anything is written, so a failed export
    leaves `dest` as it was. Returns the written files.
    """
    study_dir, dest = Path(study_dir), Path(dest)
    if not (study_dir / "study.toml").is_file():
        raise PublishError(f"{study_dir} holds no study.toml: not a study's run folder")
    try:
        study = Study.load(study_dir / "study.toml")
    except ValueError as e:
        raise PublishError(str(e)) from None
    records = rec.load(study_dir)
    if setting is not None and setting not in study.settings:
        raise PublishError(
            f"study {study.name!r} has no setting {setting!r}; its settings: "
            f"{', '.join(study.settings)}"
        )
    setting = setting or study.main
    chosen = select_runs(records, study, setting)
    paths = {name: rec.weights_path(study_dir, r) for name, r in chosen.items()}
    absent = [str(path) for path in paths.values() if not path.is_file()]
    if absent:
        raise PublishError(
            f"missing: {', '.join(absent)}. Per-run weights are not committed (.gitignore): "
            "export on the machine that trained the study"
        )
    # WeightsError names a bad file; a run folder's config.json records its weights' hash
    # (save_variant),
    # so damage since training is caught here rather than shipped under a fresh hash.
    models = {
        name: load_weights(
            paths[name],
            name,
            r.config.encoder,
            r.config.head,
            r.config.members,
            paths[name].parent / CONFIG_NAME,
            sha256=read_config(paths[name].parent / CONFIG_NAME).weights_sha256,
        )
        for name, r in chosen.items()
    }
    summaries = {row.variant: row for row in aggregate(records, study) if row.setting == setting}
    commit = git_commit()
    configs, written = {}, []
    with rec.writing(dest):
        for name, record in chosen.items():
            folder = dest / name
            configs[name] = save_variant(
                models[name], name, folder, **export_config(record, summaries[name], commit)
            )
            variant_card(configs[name], repo_id).save(folder / CARD_NAME)
            written += [folder / WEIGHTS_NAME, folder / CONFIG_NAME, folder / CARD_NAME]
        repo_card(configs, study, reference, repo_id).save(dest / CARD_NAME)
    written.append(dest / CARD_NAME)
    return written


def upload_files(
    folder: str | os.PathLike, repo_id: str, allow_synthetic: bool = False
) -> list[tuple[str, int]]:
    """[(path in the repo, size in bytes)] of what a push of `folder` to `repo_id` uploads, after
    checking the repo id and that the folder is complete, every variant loads and the guard was
    fitted for them: a broken folder is never published, nor, unless `allow_synthetic`, networks
    trained on synthetic digits."""
    if not is_repo_id(repo_id):
        raise PublishError(f"{repo_id!r} is not a Hub repo id: give USER/NAME (or ORG/NAME)")
    folder = Path(folder)
    # Our networks always; the report's networks (fc/) when they were exported too.
    sets = [networks for networks, sub in NETWORKS.items() if not sub or (folder / sub).is_dir()]
    paths = [
        f"{sub}/{path}".lstrip("/")
        for sub in (NETWORKS[n] for n in sets)
        for path in [CARD_NAME]
        + [f"{name}/{file}" for name in VARIANTS for file in (WEIGHTS_NAME, CONFIG_NAME, CARD_NAME)]
    ]
    absent = [str(folder / p) for p in paths if not (folder / p).is_file()]
    if absent:
        raise PublishError(
            f"missing: {', '.join(absent)}. Write the folder with `digitpair-train export` first"
        )
    # WeightsError names the file
    loaded = {networks: load_pretrained(folder, networks=networks) for networks in sets}
    on_random = [
        p.rsplit("/", 1)[0]
        for p in paths
        if p.endswith(CONFIG_NAME) and synthetic(read_config(folder / p))
    ]
    if on_random and not allow_synthetic:
        raise PublishError(
            f"{folder} holds networks trained on synthetic data, a dry run's "
            f"({', '.join(on_random)}): "
            "their numbers measure nothing. Export a study trained on MNIST, or give "
            "--allow-synthetic to push them anyway"
        )
    for networks, models in loaded.items():
        if models.judge is None:  # the page would not judge drawings with these weights
            raise PublishError(
                f"the guard in {folder / guard.FOLDER} can't be used with the "
                f"{networks} networks: {models.unjudged}. Fit it with "
                f"`digitpair-train fit-guard --weights {folder}`"
            )
    return [(p, (folder / p).stat().st_size) for p in paths + list(guard.FILES)]


def commit_message(folder: str | os.PathLike) -> tuple[str, str]:
    """(summary, description) of the upload commit, from the folder's config.json files."""
    configs = {name: read_config(Path(folder) / name / CONFIG_NAME) for name in VARIANTS}
    first = next(iter(configs.values()))
    summary = (
        f"digitpair weights: study {first.study}, setting {first.setting}, "
        f"commit {first.commit} ({', '.join(configs)})"
    )
    runs = [
        f"- {name}: run {c.run}, validation {pct_or_none(c.metrics.val_acc)}, test "
        f"{pct_or_none(c.metrics.test_acc)}"
        for name, c in configs.items()
    ]
    return (
        summary,
        f"Exported by `digitpair-train export`; per variant, {first.run_selection}:\n"
        + "\n".join(runs),
    )


def push(
    folder: str | os.PathLike,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    allow_synthetic: bool = False,
) -> str:
    """Create the model repo if needed and upload `folder` in one commit; returns the commit URL.

    The token comes from HF_TOKEN or the stored login (`huggingface_hub.get_token`) and goes only
    to the HfApi client: it is never printed, logged or written.
    """
    import httpx2
    from huggingface_hub import HfApi, constants, get_token
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    paths = [p for p, _ in upload_files(folder, repo_id, allow_synthetic)]
    summary, description = commit_message(folder)
    token = get_token()
    if token is None:
        raise PublishError(
            "no Hugging Face token: set HF_TOKEN to a write token, or log in with `hf auth login`"
        )
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            allow_patterns=paths,
            revision=revision,
            commit_message=summary,
            commit_description=description,
        )
    except RepositoryNotFoundError:
        raise PublishError(
            f"{repo_id} was not found, or this token can't see it; check the repo id"
        ) from None
    except HfHubHTTPError as e:
        status = e.response.status_code
        if status == 401:
            raise PublishError(
                "the Hub rejected the token (HTTP 401): it is invalid or expired; "
                "set HF_TOKEN or log in again with `hf auth login`"
            ) from None
        if status == 403:
            raise PublishError(
                f"this token may not write to {repo_id} (HTTP 403): the repo belongs to someone "
                "else or the token is read-only; use your own namespace or a write token"
            ) from None
        # The server's text, minus the token should it ever echo a header back.
        raise PublishError(
            f"the Hub refused the upload (HTTP {status}): "
            f"{(e.server_message or str(e)).replace(token, '***')}"
        ) from None
    except (
        json.JSONDecodeError
    ):  # a 200 whose body is no JSON: a proxy, a captive portal, a wrong HF_ENDPOINT
        raise PublishError(
            f"the server at {constants.ENDPOINT} answered with something that is not the Hub's "
            "JSON "
            "(a proxy or login page in the way, or HF_ENDPOINT pointing elsewhere?); "
            "check the network and push again"
        ) from None
    except (OSError, httpx2.TransportError) as e:  # OfflineModeIsEnabled, DNS, refused, timeout
        raise PublishError(
            f"can't reach the Hugging Face Hub ({type(e).__name__}); check the network "
            "(and that HF_HUB_OFFLINE is not set)"
        ) from None
    return info.commit_url
