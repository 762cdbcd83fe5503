"""The app's two speed targets, measured: one request <= 30 ms, ready to serve <= 10 s after start.

One request = what the `/compare` handler (`app.compare`) does once Gradio has the two uploaded
files: decode both drawings (280x280 PNGs, the canvas's size), preprocess them, run all five models
and the guard's judgement of both drawings (digitpair/guard/__init__.py); in process, with the app's
own settings, median over --requests. One page request = what a drawing on the page runs
(`app.show`: the same, plus the cards, their 10x10 pictures, the example check and the two 14x14
views; its drawings are two examples' digits from different pairs, so no example is recognised and
both are judged). Both are timed for each set of networks the app serves (ours, the report's). The
same request through HTTP (gradio_client: uploads, queue and event stream included, our networks) is
printed too. Start-up (both sets loaded) = from launching `python app.py` to its first HTTP 200,
median over --starts.

    python benchmarks/bench_app.py
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(timeout: float = 60.0) -> tuple[subprocess.Popen, str, float]:
    """`python app.py` on a free port: (process, url, seconds until it answered HTTP 200)."""
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    url = f"http://127.0.0.1:{port}/"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while time.perf_counter() - t0 < timeout:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return proc, url, time.perf_counter() - t0
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"app.py exited with code {proc.returncode} before serving")
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"app.py did not serve {url} within {timeout:.0f} s")


def medians_ms(calls: dict[str, object], n: int) -> dict[str, float]:
    """{name: a call} -> {name: median ms of n calls}, the calls alternating (so a machine's
    drift weighs on each alike), after 10 of each to warm up: first calls pay for lazy
    initialisation."""
    times = {name: [] for name in calls}
    for i in range(10 + n):
        for name, call in calls.items():
            t = time.perf_counter()
            call()
            if i >= 10:
                times[name].append(time.perf_counter() - t)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def median_ms(fn, n: int) -> float:
    return medians_ms({"": fn}, n)[""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--http-requests", type=int, default=50)
    p.add_argument("--starts", type=int, default=3)
    args = p.parse_args()

    sys.path.insert(0, str(ROOT))  # app.py is a script at the repo root, not part of the package
    import PIL.Image
    import torch
    from gradio_client import Client, handle_file

    import app
    from digitpair.lab.provenance import git_commit, machine

    first, second = (
        str(ROOT / "examples" / name) for name in ("pair0_first_2.png", "pair0_second_7.png")
    )
    drawn = [
        str(ROOT / "examples" / name) for name in ("pair0_first_2.png", "pair1_second_3.png")
    ]  # not an example
    sets = {networks: loaded for networks, loaded in app.SETS.items() if loaded.models}
    if not sets:
        raise SystemExit(
            f"no model loaded from {app.SETS['ours'].source}: train or export weights first"
        )
    # What the handler receives for two uploads: Gradio's FileData dicts naming its cached copies.
    uploads = [{"path": path, "meta": {"_type": "gradio.FileData"}} for path in (first, second)]
    one, page = {}, {}
    for networks in sets:
        one[networks] = median_ms(lambda: app.compare(*uploads, networks), args.requests)
        # What the page's handler receives: Sketchpad dicts of PIL images (decoded lazily, inside
        # the request).
        page[networks] = median_ms(
            lambda: app.show(
                *(
                    {"background": None, "layers": [], "composite": PIL.Image.open(path)}
                    for path in drawn
                ),
                networks,
            ),
            args.requests,
        )

    starts = []
    for i in range(args.starts):
        proc, url, seconds = start_app()
        starts.append(seconds)
        if i < args.starts - 1:
            proc.terminate()
            proc.wait()
    try:
        client = Client(url, verbose=False)
        files = handle_file(first), handle_file(second)
        http = median_ms(lambda: client.predict(*files, api_name="/compare"), args.http_requests)
    finally:
        proc.terminate()
        proc.wait()

    m = machine()
    print(
        f"machine: {m['cpu']} x{m['cpu_count']}, torch {m['torch']}, threads "
        f"{torch.get_num_threads()}, "
        f"commit {git_commit()}"
    )
    for networks, loaded in app.SETS.items():
        if networks not in sets:
            print(f"{networks} networks: none loaded ({'; '.join(loaded.missing.values())})")
            continue
        print(f"{networks} networks: {', '.join(loaded.models)} from {loaded.source}")
        print(
            f"  one request (preprocess 2 drawings + {len(loaded.models)} models + the guard), "
            f"median of {args.requests}: "
            f"{one[networks]:.1f} ms  (target <= 30 ms)"
        )
        print(
            f"  one page request (the same + cards, pictures, 14x14 views), "
            f"median of {args.requests}: "
            f"{page[networks]:.1f} ms  (target <= 30 ms)"
        )
    print(
        f"same through HTTP /compare with gradio_client, median of {args.http_requests}: "
        f"{http:.1f} ms"
    )
    print(
        f"start to ready to serve, median of {args.starts}: {statistics.median(starts):.1f} s "
        f"(each: {', '.join(f'{s:.1f}' for s in starts)})  (target <= 10 s)"
    )


if __name__ == "__main__":
    main()
