"""The package's grouping by who runs the code, held by its import graph.

core (config, data, models, drawing, weights) imports nothing of the others; the guard imports
the core; the lab (training, studies, records, reports, publishing) and the page (the Gradio page
and `/compare`) import the core and the guard, never each other. `app.py`, the Space's entry
point, imports the page and never the lab, so the page starts without the training loop.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "digitpair"
GROUPS = ("core", "guard", "lab", "page")
# group -> the groups it may import (itself included)
ALLOWED = {
    "core": {"core"},
    "guard": {"core", "guard"},
    "lab": {"core", "guard", "lab"},
    "page": {"core", "guard", "page"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every digitpair module `path` imports, anywhere in it (a function's lazy import counts)."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "digitpair"}
        elif isinstance(node, ast.ImportFrom):
            base = (
                package[: len(package) - node.level + 1] + ([node.module] if node.module else [])
                if node.level
                else [node.module or ""]
            )
            base = ".".join(base)
            if base.split(".")[0] != "digitpair":
                continue
            # `from digitpair.lab import records` imports digitpair.lab.records
            found |= {
                f"{base}.{a.name}"
                if (PACKAGE.parent / f"{base}.{a.name}".replace(".", "/"))
                .with_suffix(".py")
                .is_file()
                else base
                for a in node.names
            }
    return found


def group(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in GROUPS else None


def modules() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_belongs_to_a_group():
    loose = [m for m in modules() if group(m) is None and m != "digitpair"]
    assert not loose, f"modules outside core, guard, lab and page: {loose}"


@pytest.mark.parametrize("layer", GROUPS)
def test_a_group_imports_only_what_it_may(layer):
    graph = modules()
    wrong = sorted(
        (m, i)
        for m, found in graph.items()
        if group(m) == layer
        for i in found
        if group(i) is not None and group(i) not in ALLOWED[layer]
    )
    assert not wrong, f"{layer} may import {sorted(ALLOWED[layer])}; it imports: {wrong}"


def test_the_rules_are_seen_by_the_test():
    """The parser sees relative imports at every depth, lazy ones and `from package import
    module`."""
    graph = modules()
    assert "digitpair.core.models" in graph["digitpair.core.config"]
    assert "digitpair.core.weights" in graph["digitpair.guard.pretrained"]
    assert "digitpair.lab.training" in graph["digitpair.lab.executors"]
    assert any(group(i) == "guard" for i in graph["digitpair.page.compare"])


def test_the_page_runs_without_the_lab():
    """Importing the page and the Space's entry point loads no lab module (nor matplotlib, which
    only the reports draw with)."""
    code = (
        "import sys, app\n"
        "lab = sorted(m for m in sys.modules if m.startswith('digitpair.lab') or m == "
        "'matplotlib')\n"
        "print(lab)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
