"""The code is as pyproject.toml's [tool.ruff] says: lint clean and formatted, lines of at most
100."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--no-cache", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_ruff_lint_is_clean():
    out = ruff("check")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_ruff_format_leaves_every_file_as_it_is():
    out = ruff("format", "--check")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
