"""The checkout digitpair runs from: its root folder (weights/, examples/, train/ and the
reports sit there) and where its code is published."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # digitpair/core/checkout.py -> the checkout


def source_url(root: Path | None = None) -> str | None:
    """Where this project's code is published: `[project.urls] Source` in its pyproject.toml, if
    set."""
    pyproject = (root or ROOT) / "pyproject.toml"
    if not pyproject.is_file():
        return None
    return tomllib.loads(pyproject.read_text()).get("project", {}).get("urls", {}).get("Source")
