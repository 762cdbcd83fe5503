"""The documents lead somewhere: every relative link names a file of the repository, and every
#anchor a heading of the document it points into (GitHub's anchors); every `digitpair-train`
command they show names a subcommand, its options, and the studies, settings and variants that
exist. The README stays a front page (at most 200 lines); the rest is in docs/."""

import re
import shlex
from pathlib import Path

import pytest

RESULTS = Path("train/results")
# Every report folder: the study and the choices at the top, the evidence in evidence/.
REPORTS = sorted(
    p.parent for p in [*RESULTS.glob("*/report.md"), *RESULTS.glob("evidence/*/report.md")]
)
# The pages that teach (benchmarks/README.md logs commands as they ran, at the commits it names).
PAGES = ["README.md", *sorted(str(p) for p in Path("docs").glob("*.md")), "train/results/README.md"]
DOCS = [*PAGES, "benchmarks/README.md", *(str(p / "report.md") for p in REPORTS)]
LINK = re.compile(r"\]\(([^)\s]+)\)")
README_LINES = 200


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("doc", DOCS)
def test_links_resolve(doc):
    path = Path(doc)
    missing = []
    for link in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+:", link):  # http(s), mailto: not checked offline
            continue
        target, _, anchor = link.partition("#")
        file = path if not target else path.parent / target
        if not file.exists():
            missing.append(link)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
            missing.append(link)
    assert not missing, f"{doc}: links that lead nowhere: {missing}"


def test_the_readme_is_a_front_page():
    lines = Path("README.md").read_text().splitlines()
    assert len(lines) <= README_LINES, f"README.md is {len(lines)} lines: move detail into docs/"
    for page in [
        "docs/install.md",
        "docs/studies.md",
        "docs/app.md",
        "docs/guard.md",
        "docs/other-writers.md",
        "docs/publishing.md",
        "train/results/README.md",
    ]:
        assert f"]({page})" in "\n".join(lines), f"the README does not link {page}"


def commands(markdown: str) -> list[str]:
    """The `digitpair-train` commands a document shows: lines of its code blocks, and inline
    code."""
    blocks = re.findall(r"^```\w*\n(.*?)^```", markdown, flags=re.M | re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    inline = re.findall(
        r"`(digitpair-train [^`]+)`", re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)
    )
    return [line for line in [*lines, *inline] if line.startswith("digitpair-train ")]


@pytest.mark.parametrize("doc", PAGES)
def test_commands_name_what_exists(doc):
    import typer.main

    from digitpair.core.models import VARIANTS
    from digitpair.lab.cli import app
    from digitpair.lab.study import Study

    cli = typer.main.get_command(app)
    wrong = []
    for line in commands(Path(doc).read_text()):
        words = [w.strip("[]") for w in shlex.split(line, comments=True)[1:]]
        if words[0] == "--help":
            continue
        command = cli.commands.get(words[0])
        if command is None:
            wrong.append(f"{line}: no subcommand {words[0]!r}")
            continue
        options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        wrong += [
            f"{line}: {command.name} has no {w.split('=')[0]}"
            for w in words
            if w.startswith("--") and w.split("=")[0] not in options
        ]
        value = dict(zip(words, words[1:]))
        preset = value.get("--preset", "best" if command.name == "train" else None)
        study = (
            Study.load(f"train/studies/{preset}.toml")
            if preset and "--studies" not in value
            else None
        )
        if (
            study is not None
            and value.get("--setting", next(iter(study.settings))) not in study.settings
        ):
            wrong.append(f"{line}: study {study.name!r} has no setting {value['--setting']!r}")
        wrong += [
            f"{line}: no variant {value[o]!r}"
            for o in ("--variant", "--only")
            if o in value and value[o] not in VARIANTS
        ]
    assert not wrong, f"{doc}: " + "; ".join(wrong)


def test_anchors_follow_github():
    assert anchors("## Other writers' handwriting\n### How the recipe was chosen\n") == {
        "other-writers-handwriting",
        "how-the-recipe-was-chosen",
    }


def test_every_study_report_is_indexed():
    """train/results/README.md says of every report folder whether it is the study, a choice or
    evidence, and where it is: the evidence in evidence/, the others not; no folder is left out."""
    index = (RESULTS / "README.md").read_text()
    kept, evidence = index.split("\n## Evidence for a past decision\n")
    link = r"\[`([\w-]+)`\]\(((?:evidence/)?[\w-]+)/report\.md\)"
    assert all(folder == name for name, folder in re.findall(link, kept))
    assert all(folder == f"evidence/{name}" for name, folder in re.findall(link, evidence))
    folders = [
        p
        for p in [*RESULTS.iterdir(), *(RESULTS / "evidence").iterdir()]
        if p.is_dir() and p.name != "evidence"
    ]
    assert sorted(str(p.relative_to(RESULTS)) for p in folders) == sorted(
        f for _, f in re.findall(link, index)
    )
    assert [p.relative_to(RESULTS) for p in REPORTS] == sorted(
        p.relative_to(RESULTS) for p in folders
    )


def test_encoder_screen_quote_is_what_the_script_prints():
    """benchmarks/README.md quotes `screen_encoders.py compare` on the committed screen output and
    the committed `padded` records: the script still prints exactly that block."""
    import subprocess
    import sys

    printed = subprocess.run(
        [
            sys.executable,
            "benchmarks/screen_encoders.py",
            "compare",
            "benchmarks/encoder_screen.jsonl",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed.strip() in Path("benchmarks/README.md").read_text()
