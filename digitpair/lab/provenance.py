"""Provenance: where, with what and from which code a run trained, read by the process that trained
it.

Every field a run's record could not know is "unknown" (`UNKNOWN`): runs recorded before a field
was read keep saying so, and nothing fills it in later.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

import torch

from ..core.config import UNKNOWN, Provenance


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


class UnknownCode(Exception):
    """No git checkout can say whether digitpair's code is a commit's; the message says why."""


def _git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    # errors="replace": a diff of a file that is not UTF-8 is still text to record.
    return subprocess.run(
        ["git", *args], capture_output=True, text=True, errors="replace", check=check, cwd=root
    )


def checkout() -> Path:
    """The git checkout digitpair is imported from, wherever the command runs. UnknownCode where
    there is none: an installed copy (in site-packages, perhaps inside some other repository), an
    unpacked tarball."""
    root = Path(__file__).resolve().parents[2]
    try:
        top = _git(root, "rev-parse", "--show-toplevel").stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        top = ""
    if not top or Path(top).resolve() != root:
        raise UnknownCode(
            f"digitpair is imported from {root}, which is not a git checkout: the "
            "commit of its code cannot be known"
        )
    return root


def git_commit() -> str:
    """The short sha of the checked-out code, "-dirty" appended when the package's code differs
    from it (`uncommitted_files` of digitpair/: changed, or new and not ignored); "unknown" outside
    a git checkout. What the runs write (reports, exported weights, docs) is output, not code, so
    it does not make the code dirty. Read once per invocation, before anything trains."""
    # A copy of the tree sent elsewhere (e.g. to a GPU machine) names its commit here: a .git
    # there, if any, need not match the files that were sent.
    if os.environ.get("DIGITPAIR_COMMIT"):
        return os.environ["DIGITPAIR_COMMIT"]
    try:
        root = checkout()
        head = _git(root, "rev-parse", "--short", "HEAD").stdout.strip()
        return head + ("-dirty" if uncommitted_files(root, [root / "digitpair"]) else "")
    except (UnknownCode, OSError, subprocess.CalledProcessError):
        return UNKNOWN


def _split(root: Path, paths: list[Path]) -> tuple[list[str], list[str]]:
    """`paths` resolved: those in the checkout at `root`, and those outside it (never git's)."""
    resolved = [p.resolve() for p in paths]
    inside = [p.is_relative_to(root.resolve()) for p in resolved]
    return (
        [str(p) for p, i in zip(resolved, inside) if i],
        [str(p) for p, i in zip(resolved, inside) if not i],
    )


def _status(root: Path, inside: list[str]) -> list[tuple[str, str]]:
    """(XY, file) of `git status --porcelain` for the paths `inside` the checkout at `root`: the
    files changed from HEAD, staged or not, deleted, or untracked and not ignored ("??"); a rename
    names both of its files."""
    if not inside:
        return []
    # -z: file names as they are, unquoted; a rename's entry is followed by its source's name.
    fields = _git(
        root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *inside
    ).stdout
    entries, parts = [], iter(fields.split("\0"))
    for part in parts:
        if part:
            entries.append((part[:2], part[3:]))
            if "R" in part[:2] or "C" in part[:2]:
                entries.append((part[:2], next(parts)))
    return entries


def uncommitted_files(root: Path, paths: list[Path]) -> list[str]:
    """The files of `paths` (files or folders) whose content the checkout at `root` does not hold
    at HEAD: changed, staged or not, deleted, or untracked and not ignored; relative to `root`.
    A path outside `root` is named whole."""
    inside, outside = _split(root, paths)
    return sorted({file for _, file in _status(root, inside)}) + outside


def uncommitted_patch(root: Path, paths: list[Path]) -> str:
    """The diff from HEAD to the files of `paths` as they are (`uncommitted_files`): tracked files
    as `git diff HEAD` gives them, the others as new files. Read without touching the index."""
    inside, outside = _split(root, paths)
    diff = ("diff", "--no-color", "--no-ext-diff", "HEAD", "--")
    tracked = _git(root, *diff, *inside).stdout if inside else ""
    new = [file for xy, file in _status(root, inside) if xy == "??"] + outside
    return tracked + "".join(_new_file_diff(root, file) for file in new)


def _new_file_diff(root: Path, file: str) -> str:
    # --no-index exits 1 when the two differ, as a file and /dev/null do.
    done = _git(
        root,
        "diff",
        "--no-color",
        "--no-ext-diff",
        "--no-index",
        "--",
        os.devnull,
        file,
        check=False,
    )
    if done.returncode != 1:
        raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)
    return done.stdout


def uncommitted(paths: list[Path]) -> dict:
    """What of `paths` git does not hold at HEAD of digitpair's checkout, as an invocation records
    it: {"files": [...], "patch": "..."}, no files where git holds them all. UnknownCode where no
    checkout can tell: digitpair is not imported from one, git fails there, or DIGITPAIR_COMMIT
    names a commit with changes (a copy sent elsewhere: the changes travelled, their diff did not).
    A DIGITPAIR_COMMIT naming a commit alone vouches for the copy, as `git_commit` takes it."""
    named = os.environ.get("DIGITPAIR_COMMIT")
    if named:
        if named.endswith("-dirty"):
            raise UnknownCode(
                f"DIGITPAIR_COMMIT={named} names changes to that commit, which this "
                "copy of the code cannot list"
            )
        return {"files": [], "patch": ""}
    root = checkout()
    try:
        files = uncommitted_files(root, paths)
        return {"files": files, "patch": uncommitted_patch(root, paths) if files else ""}
    except (OSError, subprocess.CalledProcessError) as e:
        why = getattr(e, "stderr", None) or str(e)
        raise UnknownCode(f"git cannot read the checkout {root}: {' '.join(why.split())}") from None


def provenance(commit: str, started_at: str, device: str, data: str) -> Provenance:
    """Call in the process that trained the run, right after training: the machine, torch version
    and finish time are read here. `commit` is `git_commit()` as the invocation read it; `data`
    the source of the digits it trained on (`MNIST.source`)."""
    return Provenance(
        commit=commit.removesuffix("-dirty"),
        dirty=UNKNOWN if commit == UNKNOWN else commit.endswith("-dirty"),
        machine=machine(),
        torch=torch.__version__,
        device=device,
        started_at=started_at,
        finished_at=now(),
        data=data,
    )
