"""How fast the CLI answers without doing anything: `digitpair-train --help`, a command's
`--help` and an argument error, each beside a bare `python -c pass` (the interpreter's own start),
median of --runs fresh processes each, alternated so that load on the machine hits all alike.
The target: `--help` well under 0.5 s (torch, imported only by the commands that train, takes ~2 s).

    python benchmarks/bench_cli.py [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "digitpair.lab.cli"]
CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "digitpair-train --help": [*CLI, "--help"],
    "digitpair-train study --help": [*CLI, "study", "--help"],
    "digitpair-train train --no-such-option": [*CLI, "train", "--no-such-option"],
}


def seconds(command: list[str]) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
    }  # this checkout's digitpair, as the tests import it
    t0 = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=9)
    args = p.parse_args()
    times = {name: [] for name in CASES}
    for _ in range(args.runs):
        for name, command in CASES.items():
            times[name].append(seconds(command))
    base = statistics.median(times["python -c pass"])
    print(
        f"median of {args.runs} fresh processes each; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<40} {median:6.3f} s   (+{median - base:.3f} s over python -c pass)")


if __name__ == "__main__":
    main()
