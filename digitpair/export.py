"""Save and load trained variants: one folder per variant with `model.safetensors` + `config.json`.

`config.json` holds what rebuilds the module (the variant name and the code's architecture
version) plus the training config and its metrics. Weights are read with safetensors only: no
pickle is ever unpickled, so a weights file cannot run code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .models import VARIANTS, PairNet, build_model

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


class WeightsError(RuntimeError):
    """A weights folder is missing, damaged or does not match its config; the message names the file."""


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_variant(model: PairNet, name: str, folder: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write `folder/model.safetensors` and `folder/config.json` (variant, + `extra` e.g. train config, metrics)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (WEIGHTS_NAME + ".tmp")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp), metadata={"variant": name, "format": "pt"})
    os.replace(tmp, folder / WEIGHTS_NAME)
    _atomic_write_text(folder / CONFIG_NAME, json.dumps({"variant": name, **(extra or {})}, indent=2) + "\n")
    return folder


def load_variant(folder: str | os.PathLike) -> PairNet:
    """Rebuild one variant from its folder; every failure is a `WeightsError` naming the file."""
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    try:
        config = json.loads(config_path.read_text())
        name = config["variant"]
    except FileNotFoundError:
        raise WeightsError(f"{config_path} is missing") from None
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise WeightsError(f"{config_path} is not a digitpair config ({e})") from None
    if name not in VARIANTS:
        raise WeightsError(f"{config_path} names unknown variant {name!r}")
    try:
        state = load_file(str(weights_path))
    except FileNotFoundError:
        raise WeightsError(f"{weights_path} is missing") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{weights_path} is corrupt or not a safetensors file ({e})") from None
    model = build_model(name)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise WeightsError(f"{weights_path} does not match the {name!r} architecture: {e}") from None
    return model.eval()


def load_pretrained(source: str | os.PathLike, revision: str | None = None,
                    errors: dict | None = None) -> dict[str, PairNet]:
    """{variant name: model} in registry order, from a folder holding one subfolder per variant.

    With `errors` (a dict), a variant that fails to load is recorded there as {name: message}
    and the others are still returned; without it the first failure raises `WeightsError`.
    """
    root = Path(source)
    if not root.is_dir():
        raise WeightsError(f"{root} is not a folder of pretrained variants")
    models = {}
    for name in VARIANTS:
        try:
            models[name] = load_variant(root / name)
        except WeightsError as e:
            if errors is None:
                raise
            errors[name] = str(e)
    return models
