"""Provenance: where, with what and from which code a run trained, read by the process that trained it.

Every field a run's record could not know is "unknown" (`UNKNOWN`): runs recorded before a field
was read keep saying so, and nothing fills it in later.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import torch

UNKNOWN = "unknown"        # what was never recorded: never inferred, never filled in later


@dataclass(frozen=True)
class Provenance:
    """Where and with what the run trained, recorded by the process that trained it."""
    commit: str               # short git sha of the code, or "unknown"
    dirty: bool | str         # tracked files differed from the commit; "unknown" where not recorded
    machine: dict | str       # cpu, cpu_count, gpu, python, platform, torch_threads; or "unknown"
    torch: str
    device: str               # "cpu", "cuda", ...
    started_at: str           # UTC, ISO 8601
    finished_at: str
    # The study command that trained it: its id in invocations.jsonl, set by the driver as it writes
    # the record; "unknown" for runs recorded before runs named their invocation.
    invocation: str = UNKNOWN
    data: str = UNKNOWN       # "mnist", or "synthetic": a dry run's random digits (data.synthetic_mnist)

    def to_dict(self) -> dict:
        # A field never recorded stays unwritten: the rows of older runs pack to the bytes they were written as.
        return {k: v for k, v in dataclasses.asdict(self).items() if not (k in ("invocation", "data") and v == UNKNOWN)}


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
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpu": gpu, "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform()}


def git_commit() -> str:
    """The short sha of the checked-out code, "-dirty" appended when tracked files differ; "unknown"
    outside a git checkout. Read once per invocation, before anything trains."""
    # A copy of the tree sent elsewhere (e.g. to a GPU machine) names its commit here: a .git
    # there, if any, need not match the files that were sent.
    if os.environ.get("DIGITPAIR_COMMIT"):
        return os.environ["DIGITPAIR_COMMIT"]
    # The checkout digitpair is imported from, wherever the command runs; an installed copy (in
    # site-packages, perhaps inside some other repository) has none.
    checkout = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=checkout).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != checkout:
            return UNKNOWN
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return git("rev-parse", "--short", "HEAD") + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return UNKNOWN


def provenance(commit: str, started_at: str, device: str, data: str) -> Provenance:
    """Call in the process that trained the run, right after training: the machine, torch version
    and finish time are read here. `commit` is `git_commit()` as the invocation read it; `data`
    the source of the digits it trained on (`MNIST.source`)."""
    return Provenance(commit=commit.removesuffix("-dirty"),
                      dirty=UNKNOWN if commit == UNKNOWN else commit.endswith("-dirty"),
                      machine=machine(), torch=torch.__version__, device=device,
                      started_at=started_at, finished_at=now(), data=data)
