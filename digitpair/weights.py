"""Save and load trained variants: one folder per variant with `model.safetensors` + `config.json`.

`config.json` holds what rebuilds the module (the variant and encoder names) plus the training
config and its metrics. Weights are read with safetensors only: no pickle is ever unpickled, so
a weights file cannot run code. `load_pretrained` reads the same layout from a local folder (`weights/`) or
from a Hugging Face Hub repo, which is that folder uploaded (see digitpair/publish.py).

Why not huggingface_hub's `PyTorchModelHubMixin`: its `from_pretrained` reads one model from the
repo root (we keep five variants, one per subfolder, in one repo), falls back to a pickled
`pytorch_model.bin` when `model.safetensors` is absent, and loads with `strict=False`, which
silently accepts weights that don't fit the module. Its config.json holds only constructor
arguments, while ours names a registry variant and carries the training record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .models import ENCODERS, VARIANTS, PairNet, build_model

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
# What a Hub download fetches: the two files per variant that load it, nothing else, so no pickle
# (*.bin, *.pt, *.pkl) ever reaches the disk even if someone uploads one to the repo.
HUB_FILES = [f"{name}/{file}" for name in VARIANTS for file in (WEIGHTS_NAME, CONFIG_NAME)]


class WeightsError(RuntimeError):
    """A weights folder is missing, damaged or does not match its config; the message names the file."""


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_variant(model: PairNet, name: str, folder: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write `folder/model.safetensors` and `folder/config.json` (variant, encoder, + `extra` e.g.
    train config, metrics)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (WEIGHTS_NAME + ".tmp")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp), metadata={"variant": name, "format": "pt"})
    os.replace(tmp, folder / WEIGHTS_NAME)
    config = {"variant": name, "encoder": model.encoder_name, **(extra or {})}
    _atomic_write_text(folder / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
    return folder


def load_variant(folder: str | os.PathLike) -> PairNet:
    """Rebuild one variant from its folder; every failure is a `WeightsError` naming the file."""
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    try:
        config = json.loads(config_path.read_text())
        name, encoder = config["variant"], config["encoder"]
    except FileNotFoundError:
        raise WeightsError(f"{config_path} is missing") from None
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise WeightsError(f"{config_path} is not a digitpair config ({e})") from None
    if name not in VARIANTS or encoder not in ENCODERS:
        raise WeightsError(f"{config_path} names unknown variant {name!r} or encoder {encoder!r}")
    return load_weights(weights_path, name, encoder, config_path)


def load_weights(weights_path: Path, name: str, encoder: str, config_path: Path | str = "its record") -> PairNet:
    """Build variant `name` with `encoder` and load `weights_path` into it, strictly; `config_path`
    names where the variant and encoder came from, in messages."""
    try:
        with safe_open(str(weights_path), framework="pt") as f:
            recorded = (f.metadata() or {}).get("variant")
            state = {key: f.get_tensor(key) for key in f.keys()}
    except FileNotFoundError:
        raise WeightsError(f"{weights_path} is missing") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{weights_path} is corrupt or not a safetensors file ({e})") from None
    # simple_cnn and shared_aux have the same tensors as shared: only the name save_variant wrote
    # into the file tells a swapped config.json apart. Files without that metadata skip this check.
    if recorded is not None and recorded != name:
        raise WeightsError(f"{config_path} says {name!r} but {weights_path} holds {recorded!r} weights")
    model = build_model(name, encoder)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise WeightsError(f"{weights_path} does not match the {name!r} ({encoder}) architecture: {e}") from None
    return model.eval()


def _hub_snapshot(repo_id: str, revision: str | None) -> Path:
    """The local folder of a Hub repo's files at `revision`: downloaded, or from the HF cache.

    Offline (HF_HUB_OFFLINE=1 or no network) the cached snapshot is used. Every way of failing is
    a `WeightsError` saying which repo and revision could not be resolved, and why.
    """
    # Imported here: `import digitpair` (and every training worker) doesn't need the Hub client.
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    where = f"{repo_id} is not a local folder, and as a Hub repo (revision {revision or 'main'!r})"
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILES))
    except RevisionNotFoundError:
        raise WeightsError(f"{where} it has no such revision") from None
    except RepositoryNotFoundError:
        raise WeightsError(f"{where} it was not found: no such repo, or a private one and no token with "
                           f"access is set (HF_TOKEN or `hf auth login`)") from None
    except LocalEntryNotFoundError:
        raise WeightsError(f"{where} it is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and the "
                           f"Hub can't be reached (HF_HUB_OFFLINE is set, or no network)") from None
    except HfHubHTTPError as e:
        raise WeightsError(f"{where} the Hub answered HTTP {e.response.status_code}") from None


def is_repo_id(source: str) -> bool:
    """Whether `source` reads as a Hub repo id ORG/NAME (not whether the repo exists)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id
    try:
        validate_repo_id(source)
    except HFValidationError:
        return False
    return source.count("/") == 1   # ORG/NAME: a bare name is more likely a mistyped folder


def load_pretrained(source: str | os.PathLike, revision: str | None = None,
                    errors: dict | None = None) -> dict[str, PairNet]:
    """{variant name: model} in registry order, from a folder holding one subfolder per variant,
    or from a Hub repo id ("ORG/NAME", at `revision`) whose files have that layout.

    With `errors` (a dict), a variant that fails to load is recorded there as {name: message}
    and the others are still returned; without it the first failure raises `WeightsError`.
    A source that can't be found at all always raises `WeightsError`.
    """
    root = Path(source)
    if root.is_dir():
        if revision is not None:
            raise WeightsError(f"{root} is a local folder: a revision ({revision!r}) applies to Hub repos only")
    elif is_repo_id(str(source)):
        root = _hub_snapshot(str(source), revision)
    else:
        raise WeightsError(f"{source} is neither a folder of pretrained variants nor a Hub repo id (ORG/NAME)")
    models = {}
    for name in VARIANTS:
        try:
            models[name] = load_variant(root / name)
        except WeightsError as e:
            if errors is None:
                raise
            errors[name] = str(e)
    return models
