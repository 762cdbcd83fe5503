"""Save and load trained variants: one folder per variant with `model.safetensors` + `config.json`.

`config.json` (a `VariantConfig`) holds what rebuilds the module (the variant, encoder and head
names), the SHA-256 of `model.safetensors` (checked on load), the training config and its metrics;
`read_config` is where it is read and checked. Weights are read with safetensors only: no pickle
is ever unpickled, so a weights file cannot run code. `load_pretrained`
reads the same layout from a local folder (`weights/`) or from a Hugging Face Hub repo, which is
that folder uploaded (see digitpair/lab/publish.py).

Why not huggingface_hub's `PyTorchModelHubMixin`: its `from_pretrained` reads one model from the
repo root (we keep five variants, one per subfolder, in one repo), falls back to a pickled
`pytorch_model.bin` when `model.safetensors` is absent, and loads with `strict=False`, which
silently accepts weights that don't fit the module. Its config.json holds only constructor
arguments, while ours names a registry variant and carries the training record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import reprlib
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .config import UNKNOWN, Metrics, Provenance, RunConfig
from .models import (
    DEFAULT_HEAD,
    ENCODERS,
    HEADS,
    VARIANTS,
    Ensemble,
    PairNet,
    build_model,
    check_build,
    count_members,
    count_parameters,
)
from .typed import from_mapping

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
# What a Hub download fetches: the two files per variant that load it, nothing else, so no pickle
# (*.bin, *.pt, *.pkl) ever reaches the disk even if someone uploads one to the repo.
# Two sets of the five variants share the layout: ours (order head) at the root, the 2020 report's
# networks (its fully connected comparison head) in `fc/`. simple_cnn compares its digits in code in
# both; the `fc/` one is the run of the report-head setting (best.toml's recipe_fc).
# Beside them, `guard/`: the "not a digit" guard fitted for these networks (digitpair/guard/).
NETWORKS = {"ours": "", "report": "fc"}  # set name -> subfolder
GUARD_FOLDER = "guard"
GUARD_FILES = (f"{GUARD_FOLDER}/{WEIGHTS_NAME}", f"{GUARD_FOLDER}/guard.json")
HUB_FILES = [
    f"{sub}/{name}/{file}".lstrip("/")
    for sub in NETWORKS.values()
    for name in VARIANTS
    for file in (WEIGHTS_NAME, CONFIG_NAME)
] + list(GUARD_FILES)


@dataclass(frozen=True)
class StudySummary:
    """A variant's numbers over its study's rounds in the exported setting (its summary.csv row's,
    records.Summary): mean and sample std, None where no round measured it."""

    rounds: int
    val_acc_mean: float | None
    val_acc_std: float | None
    test_acc_mean: float | None
    test_acc_std: float | None
    test_digit_acc_mean: float | None
    test_digit_acc_std: float | None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class VariantConfig:
    """A variant folder's config.json, typed: what rebuilds the network, its weights' SHA-256, and
    what its run and export recorded beside them. None: this file does not record it (a run folder's
    holds no metrics, they are in its final.json; `train --save` writes no study; an export all)."""

    variant: str
    encoder: str
    head: str
    members: int
    weights_sha256: str | None = (
        None  # checked on load; folders exported before it was recorded load unchecked
    )
    description: str | None = None  # the variant's (models.VARIANTS)
    parameters: int | None = None  # as the run counted them; checked against the network on load
    # The run: its study, setting, round and name, and how export chose it among the study's runs.
    study: str | None = None
    setting: str | None = None
    round: int | None = None
    run: str | None = None
    run_selection: str | None = None
    train_config: RunConfig | None = None
    metrics: Metrics | None = None
    provenance: Provenance | None = None
    study_summary: StudySummary | None = None  # its setting's mean ± std, for the card
    commit: str | None = None  # the code export ran from

    def to_dict(self) -> dict:
        """As config.json holds it: in field order, what this file does not record left out."""
        return {
            f.name: value.to_dict() if dataclasses.is_dataclass(value) else value
            for f in dataclasses.fields(self)
            if (value := getattr(self, f.name)) is not None
        }


def from_json(cls, value: dict, where: str = ""):
    """A JSON object as dataclass `cls`, every field checked against its type (core/typed.py): a
    field may be absent only where its default says "not recorded" (None or UNKNOWN)."""
    return from_mapping(cls, value, where, absent=(None, UNKNOWN))


class WeightsError(RuntimeError):
    """A weights folder is missing, damaged or does not match its config; the message names the
    file."""


def atomic_write_text(path: Path, text: str) -> None:
    """`path` holds the old text or the new, never part of one (a full disk, a kill); no
    leftover."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def file_sha256(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file's bytes: what config.json records of its weights, and what the
    Hub lists for a file stored with Git LFS."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def save_variant(model: PairNet, name: str, folder: str | os.PathLike, **recorded) -> VariantConfig:
    """Write `folder/model.safetensors` and `folder/config.json`: the variant, encoder, head and
    members of `model`, the weights' SHA-256, and `recorded`, the other VariantConfig fields (the
    train config, metrics, ...). An Ensemble's members share the one file, keys `members.<i>.`.
    Returns the config written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (WEIGHTS_NAME + ".tmp")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    try:
        # One metadata entry: safetensors writes its metadata in hash-map order, which varies from
        # process to process, so with one a file is the same bytes wherever it is written (and so
        # is the SHA-256 config.json records of it).
        save_file(state, str(tmp), metadata={"variant": name})
        sha256 = file_sha256(tmp)
        os.replace(tmp, folder / WEIGHTS_NAME)
    finally:
        tmp.unlink(missing_ok=True)
    config = VariantConfig(
        variant=name,
        encoder=model.encoder_name,
        head=model.head_name,
        members=count_members(model),
        weights_sha256=sha256,
        **recorded,
    )
    atomic_write_text(folder / CONFIG_NAME, json.dumps(config.to_dict(), indent=2) + "\n")
    return config


def read_config(path: Path) -> VariantConfig:
    """A variant's `config.json` -> its VariantConfig, checked: a UTF-8 JSON object whose `variant`,
    `encoder` and `head` name entries of VARIANTS, ENCODERS and HEADS and whose every other field,
    where present, has its type (`from_json`). Every failure is a `WeightsError` naming the file."""
    try:
        config = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise WeightsError(f"{path} is missing") from None
    except OSError as e:  # a directory, no permission
        raise WeightsError(f"{path} can't be read ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise WeightsError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except (json.JSONDecodeError, RecursionError) as e:
        raise WeightsError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise WeightsError(
            f"{path} is not a digitpair config: a JSON object is expected, got "
            f"{type(config).__name__}"
        )
    if "variant" not in config:
        raise WeightsError(f"{path} is not a digitpair config: it names no variant")
    if "encoder" not in config:
        raise WeightsError(
            f"{path} names no encoder: a folder written before encoders were named; migrate it "
            "(train/migrate_records.py) or export it again"
        )
    # Folders written before the fc head and ensembles existed: every one an order-head single
    # network.
    config = {"head": DEFAULT_HEAD, "members": 1, **config}
    for field, choices in (("variant", VARIANTS), ("encoder", ENCODERS), ("head", HEADS)):
        value = config[field]
        if not (isinstance(value, str) and value in choices):
            raise WeightsError(
                f"{path}: {field} {reprlib.repr(value)} is not one of {', '.join(choices)}"
            )
    try:
        typed = from_json(VariantConfig, config)
    except ValueError as e:
        raise WeightsError(f"{path}: {e}") from None
    if typed.weights_sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", typed.weights_sha256):
        raise WeightsError(
            f"{path}: weights_sha256 {reprlib.repr(typed.weights_sha256)} is not a SHA-256 "
            "(64 lowercase hex digits)"
        )
    return typed


def read_state(path: Path) -> tuple[dict[str, torch.Tensor], str | None]:
    """`model.safetensors` -> (tensors, the variant save_variant recorded in it, if any)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            recorded = (f.metadata() or {}).get("variant")
            return {key: f.get_tensor(key) for key in f.keys()}, recorded
    except FileNotFoundError:
        raise WeightsError(f"{path} is missing") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path} is corrupt or not a safetensors file ({e})") from None


def check_state(state: dict[str, torch.Tensor], model: PairNet, path: Path, what: str) -> None:
    """Every tensor `model` has, none it lacks, each of its shape and dtype, and finite: else a
    `WeightsError` naming `path` and the first tensors that differ."""
    expected = model.state_dict()
    problems = [f"no {key}" for key in expected if key not in state]
    problems += [f"unexpected {key}" for key in state if key not in expected]
    for key, tensor in state.items():
        if key not in expected:
            continue
        want = expected[key]
        if tuple(tensor.shape) != tuple(want.shape) or tensor.dtype != want.dtype:
            problems.append(
                f"{key} is {str(tensor.dtype).removeprefix('torch.')} {tuple(tensor.shape)}, "
                f"expected {str(want.dtype).removeprefix('torch.')} {tuple(want.shape)}"
            )
        elif tensor.is_floating_point() and not torch.isfinite(tensor).all():
            problems.append(f"{key} holds NaN or infinite values")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise WeightsError(
            f"{path} does not match the {what} architecture: {'; '.join(problems[:3])}{more}"
        )


def load_variant(folder: str | os.PathLike) -> PairNet | Ensemble:
    """Rebuild one variant from its folder, every part checked (`read_config`, `check_state`, the
    weights' SHA-256 where config.json records one); every failure is a `WeightsError` naming the
    file."""
    return load_variant_and_config(folder)[0]


def load_variant_and_config(folder: str | os.PathLike) -> tuple[PairNet | Ensemble, VariantConfig]:
    """`load_variant`, and the config.json it was rebuilt from (read once)."""
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    c = read_config(config_path)
    model = load_weights(
        weights_path,
        c.variant,
        c.encoder,
        c.head,
        c.members,
        config_path,
        c.parameters,
        c.weights_sha256,
    )
    return model, c


def load_weights(
    weights_path: Path,
    name: str,
    encoder: str,
    head: str = DEFAULT_HEAD,
    members: int = 1,
    config_path: Path | str = "its record",
    parameters: int | None = None,
    sha256: str | None = None,
) -> PairNet | Ensemble:
    """Build variant `name` (`encoder`, `head`, `members` networks) and load `weights_path` into it,
    every tensor checked (`check_state`); `config_path` names where the architecture came from, in
    messages, `parameters` is the count it states, if any, and `sha256` the file's recorded hash.

    The hash is compared after the structural checks, so a file of the wrong shape is named for
    that; what it catches is damage that leaves a well-formed file (a flipped bit in tensor data
    stays a finite number of the right dtype). Folders exported before config.json recorded it
    load unchecked."""
    if type(members) is not int or members < 1:
        raise WeightsError(
            f"{config_path} says members={reprlib.repr(members)}; expected a whole number >= 1"
        )
    try:
        check_build(name, encoder, head, members)
    except ValueError as e:
        raise WeightsError(f"{config_path}: {e}") from None
    state, recorded = read_state(weights_path)
    # simple_cnn and shared_aux have the same tensors as shared: only the name save_variant wrote
    # into the file tells a swapped config.json apart. Files without that metadata skip this check.
    if recorded is not None and recorded != name:
        raise WeightsError(
            f"{config_path} says {name!r} but {weights_path} holds {reprlib.repr(recorded)} weights"
        )
    model = (
        build_model(name, encoder, head)
        if members == 1
        else Ensemble([build_model(name, encoder, head) for _ in range(members)])
    )
    check_state(
        state, model, weights_path, f"{name!r} ({encoder}, {head} head, {members} member(s))"
    )
    if sha256 is not None and (actual := file_sha256(weights_path)) != sha256:
        raise WeightsError(
            f"{weights_path} is damaged or was replaced: its SHA-256 is {actual[:12]}..., "
            f"{config_path} records {sha256[:12]}... for it"
        )
    if parameters is not None and parameters != count_parameters(model):
        raise WeightsError(
            f"{config_path} says {parameters:,} parameters; the {name!r} ({encoder}, {head} head) "
            f"model has {count_parameters(model):,}"
        )
    model.load_state_dict(state, strict=True)
    return model.eval()


def _hub_snapshot(repo_id: str, revision: str | None) -> Path:
    """The local folder of a Hub repo's files at `revision`: downloaded, or from the HF cache.

    Offline (HF_HUB_OFFLINE=1 or no network) the cached snapshot is used. Every way of failing is
    a `WeightsError` saying which repo and revision could not be resolved, and why.
    """
    # Imported here: `import digitpair` (and every training worker) doesn't need the Hub client.
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo_id} is not a local folder, and as a Hub repo (revision {revision or 'main'!r})"
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILES))
    except RevisionNotFoundError:
        raise WeightsError(f"{where} it has no such revision") from None
    except RepositoryNotFoundError:
        raise WeightsError(
            f"{where} it was not found: no such repo, or a private one and no token with "
            f"access is set (HF_TOKEN or `hf auth login`)"
        ) from None
    except LocalEntryNotFoundError:
        raise WeightsError(
            f"{where} it is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and the "
            f"Hub can't be reached (HF_HUB_OFFLINE is set, or no network)"
        ) from None
    except HfHubHTTPError as e:
        raise WeightsError(f"{where} the Hub answered HTTP {e.response.status_code}") from None


def is_repo_id(source: str) -> bool:
    """Whether `source` reads as a Hub repo id ORG/NAME (not whether the repo exists)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(source)
    except HFValidationError:
        return False
    return source.count("/") == 1  # ORG/NAME: a bare name is more likely a mistyped folder


def weights_folder(source: str | os.PathLike, revision: str | None = None) -> Path:
    """The local folder of `source`: a folder of pretrained variants as it is, or a Hub repo id
    ("ORG/NAME", at `revision`) downloaded or read from the HF cache; `WeightsError` where
    neither."""
    root = Path(source)
    if root.is_dir():
        if revision is not None:
            raise WeightsError(
                f"{root} is a local folder: a revision ({revision!r}) applies to Hub repos only"
            )
        return root
    if is_repo_id(str(source)):
        return _hub_snapshot(str(source), revision)
    raise WeightsError(
        f"{source} is neither a folder of pretrained variants nor a Hub repo id (ORG/NAME)"
    )


def load_networks(
    root: Path,
    networks: str = "ours",
    errors: dict | None = None,
    configs: dict | None = None,
) -> dict[str, PairNet | Ensemble]:
    """{variant name: model} in registry order, from the `networks` set of the weights folder
    `root`: "ours" (the order head) or "report" (the 2020 report's FC head, the `fc/` subfolder).

    With `errors` (a dict), a variant that fails to load is recorded there as {name: message}
    and the others are still returned; without it the first failure raises `WeightsError`.
    With `configs` (a dict), each loaded variant's config.json is kept there as {name: config}.
    """
    if networks not in NETWORKS:
        raise WeightsError(f"networks={networks!r}; choose one of {', '.join(NETWORKS)}")
    models = {}
    for name in VARIANTS:
        try:
            models[name], config = load_variant_and_config(root / NETWORKS[networks] / name)
        except WeightsError as e:
            if errors is None:
                raise
            errors[name] = str(e)
            continue
        if configs is not None:
            configs[name] = config
    return models
