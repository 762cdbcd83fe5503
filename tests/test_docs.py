"""The documents' links lead somewhere: every relative link names a file of the repository, and
every #anchor a heading of the document it points into (GitHub's anchors)."""

import re
from pathlib import Path

import pytest

RESULTS = Path("train/results")
# Every report folder: the study and the choices at the top, the evidence in evidence/.
REPORTS = sorted(p.parent for p in [*RESULTS.glob("*/report.md"), *RESULTS.glob("evidence/*/report.md")])
DOCS = ["README.md", *sorted(str(p) for p in Path("docs").glob("*.md")), "benchmarks/README.md",
        "train/results/README.md", *(str(p / "report.md") for p in REPORTS)]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("doc", DOCS)
def test_links_resolve(doc):
    path = Path(doc)
    missing = []
    for link in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+:", link):            # http(s), mailto: not checked offline
            continue
        target, _, anchor = link.partition("#")
        file = path if not target else path.parent / target
        if not file.exists():
            missing.append(link)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
            missing.append(link)
    assert not missing, f"{doc}: links that lead nowhere: {missing}"


def test_anchors_follow_github():
    assert anchors("## Other writers' handwriting\n### How the recipe was chosen\n") == {
        "other-writers-handwriting", "how-the-recipe-was-chosen"}


def test_every_study_report_is_indexed():
    """train/results/README.md says of every report folder whether it is the study, a choice or
    evidence, and where it is: the evidence in evidence/, the others not; no folder is left out."""
    index = (RESULTS / "README.md").read_text()
    kept, evidence = index.split("\n## Evidence for a past decision\n")
    link = r"\[`([\w-]+)`\]\(((?:evidence/)?[\w-]+)/report\.md\)"
    assert all(folder == name for name, folder in re.findall(link, kept))
    assert all(folder == f"evidence/{name}" for name, folder in re.findall(link, evidence))
    folders = [p for p in [*RESULTS.iterdir(), *(RESULTS / "evidence").iterdir()]
               if p.is_dir() and p.name != "evidence"]
    assert sorted(str(p.relative_to(RESULTS)) for p in folders) == sorted(f for _, f in re.findall(link, index))
    assert [p.relative_to(RESULTS) for p in REPORTS] == sorted(p.relative_to(RESULTS) for p in folders)


def test_encoder_screen_quote_is_what_the_script_prints():
    """benchmarks/README.md quotes `screen_encoders.py compare` on the committed screen output and
    the committed `padded` records: the script still prints exactly that block."""
    import subprocess
    import sys
    printed = subprocess.run([sys.executable, "benchmarks/screen_encoders.py", "compare", "benchmarks/encoder_screen.jsonl"],
                             capture_output=True, text=True, check=True).stdout
    assert printed.strip() in Path("benchmarks/README.md").read_text()
