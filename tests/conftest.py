import dataclasses
import os
from pathlib import Path

import pytest
import torch

from digitpair import VARIANTS, build_model, guard
from digitpair.core.data import MNIST, DataError, synthetic_mnist
from digitpair.core.weights import NETWORKS, save_variant
from digitpair.guard import Limits
from digitpair.guard import fit as guard_fit
from digitpair.guard.pretrained import load_pretrained

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist() -> MNIST:
    """Real MNIST from $DIGITPAIR_DATA (CI sets it to ../shared/data/mnist), else that shared
    copy."""
    root = os.environ.get("DIGITPAIR_DATA") or (SHARED if SHARED.is_dir() else None)
    try:
        return MNIST(root, download=False)
    except DataError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"real MNIST not available: {e}")


# Limits no drawing passes: every drawing a digit.
NEVER = Limits(max_odds=100.0, weight=0.0, min_agreement=0.0)


def write_guard(
    folder: Path, limits: Limits = NEVER, seed: int = 0, networks: dict | None = None
) -> list[Path]:
    """An untrained guard in `folder`/guard/, its record naming the sets of networks in `folder`
    (or `networks`: {set: {variant: model}}) and `limits` for every set; by default limits that no
    drawing passes, so every drawing is judged a digit."""
    torch.manual_seed(seed)
    sets = networks or {
        n: load_pretrained(folder, networks=n)
        for n, sub in NETWORKS.items()
        if (folder / sub).is_dir()
    }
    fingerprints = {
        n: {name: guard.fingerprint(m) for name, m in models.items()} for n, models in sets.items()
    }
    record = {
        "networks": {
            n: {"fingerprints": fingerprints[n], "limits": dataclasses.asdict(limits)} for n in sets
        }
    }
    return guard_fit.write(folder / guard.FOLDER, guard.GuardNet(members=2), record)


@pytest.fixture(scope="session")
def weights(tmp_path_factory):
    """Untrained variants saved the way weights/ is laid out, ours at the top and the report's (the
    fc head where the variant has a pair head) in fc/, and a guard fitted for them that judges
    every drawing a digit (`write_guard`); their numbers are arbitrary but fixed."""
    root = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    for name in VARIANTS:
        save_variant(build_model(name), name, root / name)
        save_variant(
            build_model(name, head="fc" if VARIANTS[name].pair_loss else "order"),
            name,
            root / "fc" / name,
        )
    write_guard(root)
    return root


@pytest.fixture(scope="session")
def tiny() -> MNIST:
    return synthetic_mnist()


@pytest.fixture(autouse=True)
def torch_threads():
    """A command run in this process (CliRunner) sets torch's thread count for its runs, as its own
    process would; the next test gets the suite's back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def served_app():
    """The real app (app.py, models from weights/) served on 127.0.0.1 on a free port: (module,
    url).

    Shared by the API and the browser tests, so the suite starts one server. Without trained
    weights the app has nothing to serve: skipped locally, a failure under CI.
    """
    import socket

    threads = torch.get_num_threads()
    import app

    torch.set_num_threads(
        threads
    )  # app.py serves with one thread; the rest of the suite keeps its own

    ours = app.SETS[
        "ours"
    ]  # the default set; the report's may be absent from a copy, and the page says so
    if not ours.models:
        if os.environ.get("CI"):
            pytest.fail(f"no trained model loaded from {ours.source}: {ours.missing}")
        pytest.skip(f"no trained model in {ours.source}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, url, _ = app.demo.launch(
        **app.LAUNCH_OPTIONS,
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
    )
    yield app, url
    app.demo.close()
