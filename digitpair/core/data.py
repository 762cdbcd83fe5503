"""MNIST digit pairs, exactly as the EE-559 course's `generate_pair_sets(nb)` makes them.

Course semantics (dlc_practical_prologue.py, `mnist_to_pairs`): 28x28 images are 2x2 average
pooled to 14x14, one random permutation of the split is drawn, its first 2N indices are paired
in order, `target = class_a <= class_b`, and the inputs stay raw 0-255 floats. Training pairs come
from MNIST-train, test pairs from MNIST-test. Here every draw takes an explicit
`torch.Generator`, so a seed reproduces a set bit for bit and no global RNG is touched.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

DATA_ENV = "DIGITPAIR_DATA"
# MNIST.source of synthetic_mnist's random digits, recorded in every run trained on them
SYNTHETIC = "synthetic"
DEFAULT_ROOT = Path.home() / ".cache" / "digitpair"

# (file stem, IDX magic number, item count) per split; the magic is 0x00000803 for 3-d uint8
# images and 0x00000801 for 1-d uint8 labels (http://yann.lecun.com/exdb/mnist/).
_FILES = {
    True: (("train-images-idx3-ubyte", 2051, 60000), ("train-labels-idx1-ubyte", 2049, 60000)),
    False: (("t10k-images-idx3-ubyte", 2051, 10000), ("t10k-labels-idx1-ubyte", 2049, 10000)),
}


class DataError(RuntimeError):
    """MNIST is missing or damaged; the message says where we looked and what to do."""


@dataclass(frozen=True)
class PairSet:
    input: torch.Tensor  # (N, 2, 14, 14) float32, raw 0-255
    target: torch.Tensor  # (N,) int64, 1 iff class of digit 0 <= class of digit 1
    classes: torch.Tensor  # (N, 2) int64, the two digit classes

    def __len__(self) -> int:
        return len(self.target)

    def __getitem__(self, index) -> "PairSet":
        return PairSet(self.input[index], self.target[index], self.classes[index])

    def to(self, device) -> "PairSet":
        return PairSet(self.input.to(device), self.target.to(device), self.classes.to(device))


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """`--data-dir`, else $DIGITPAIR_DATA, else ~/.cache/digitpair."""
    return Path(data_dir or os.environ.get(DATA_ENV) or DEFAULT_ROOT).expanduser()


def _find(root: Path, stem: str) -> Path | None:
    # A plain folder of IDX files (../shared/data/mnist) or torchvision's <root>/MNIST/raw layout.
    for folder in (root, root / "MNIST" / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _read_idx(path: Path, magic: int, count: int, expected_sha256: str | None) -> torch.Tensor:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (zlib.error, EOFError, gzip.BadGzipFile) as e:  # a flipped bit or a cut-off download
        raise DataError(f"{path} is damaged ({type(e).__name__}: {e}); fetch it again") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if expected_sha256 and hashlib.sha256(raw).hexdigest() != expected_sha256:
        raise DataError(
            f"{path} does not match its SHA256SUMS entry: the file is damaged; fetch it again"
        )
    header = int.from_bytes(raw[:4], "big")
    ndim = header & 0xFF
    if header != magic or int.from_bytes(raw[4:8], "big") != count:
        raise DataError(f"{path} is not an MNIST IDX file of {count} items (magic {header:#x})")
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = raw[4 + 4 * ndim :]
    expected = 1
    for s in shape:
        expected *= s
    if len(data) != expected:
        raise DataError(f"{path} is truncated: {len(data)} bytes of data, expected {expected}")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(shape)


def _checksums(folder: Path) -> dict[str, str]:
    sums = folder / "SHA256SUMS.uncompressed"
    if not sums.is_file():
        return {}
    pairs = (line.split() for line in sums.read_text().splitlines() if line.strip())
    return {name: digest for digest, name in pairs}


def ways_to_provide(root: Path) -> str:
    """The ways to give this project MNIST, one a line, for the errors that find none."""
    names = ", ".join(f"{stem}[.gz]" for split in (True, False) for stem, _, _ in _FILES[split])
    return "\n".join(
        [
            f"MNIST is four IDX files ({names}). Provide them in one of these ways:",
            f"  1. put them in {root}, or in {root / 'MNIST' / 'raw'} (torchvision's layout);",
            f"  2. point --data-dir or ${DATA_ENV} at the folder that holds them;",
            f"  3. give neither, and they are downloaded into {DEFAULT_ROOT} on first use (needs "
            "network access);",
            '  4. on a machine with network access, run python -c "from torchvision.datasets '
            "import MNIST; "
            "MNIST('mnist', download=True); MNIST('mnist', train=False, download=True)\", "
            "then copy its folder mnist/MNIST/raw here and use 1 or 2.",
        ]
    )


def _download(root: Path, train: bool) -> None:
    # A failed download leaves no empty folders behind: what it created is removed.
    created = next((p for p in (root, root / "MNIST") if not p.exists()), None)
    try:
        from torchvision.datasets import MNIST

        MNIST(str(root), train=train, download=True)
    except Exception as e:  # no network, no torchvision: the caller explains what to do
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        reason = (
            " ".join(str(e).split()) or "no message"
        )  # torchvision's message spans lines: one line here
        raise DataError(
            f"MNIST not found under {root}, and downloading it failed:\n"
            f"  {type(e).__name__}: {reason}\n{ways_to_provide(root)}"
        ) from None


def load_mnist(
    train: bool, data_dir: str | os.PathLike | None = None, download: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 28, 28) uint8, labels (N,) int64) of one MNIST split, verified."""
    root = data_root(data_dir)
    if (
        data_dir or os.environ.get(DATA_ENV)
    ) and not root.is_dir():  # a folder named, not the default cache
        raise DataError(
            f"{root}: no such folder (named by --data-dir or ${DATA_ENV}); nothing was created\n"
            f"{ways_to_provide(root)}"
        )
    paths = [_find(root, stem) for stem, _, _ in _FILES[train]]
    if None in paths:
        if not download:
            raise DataError(f"MNIST not found under {root}\n{ways_to_provide(root)}")
        _download(root, train)
        paths = [_find(root, stem) for stem, _, _ in _FILES[train]]
    (img_stem, img_magic, n), (lbl_stem, lbl_magic, _) = _FILES[train]
    images = _read_idx(paths[0], img_magic, n, _checksums(paths[0].parent).get(img_stem))
    labels = _read_idx(paths[1], lbl_magic, n, _checksums(paths[1].parent).get(lbl_stem))
    if images.shape != (n, 28, 28) or int(labels.max()) > 9:
        raise DataError(f"{paths[0]} / {paths[1]} do not hold 28x28 images with labels 0-9")
    return images, labels.long()


def draw_pairs(n: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 2) indices of distinct images out of `count`: the course's draw, the first 2n of a
    permutation."""
    if not 0 < 2 * n <= count:
        raise ValueError(f"cannot draw {n} pairs of distinct images from {count} images")
    return torch.randperm(count, generator=generator)[: 2 * n].view(n, 2)


def fold_count(n_pairs: int, val_pairs: int) -> int:
    """How many folds of `val_pairs` validation pairs `n_pairs` training pairs make: `val_fold`
    takes 0 .. fold_count - 1. One without validation pairs (nothing is held out)."""
    return n_pairs // val_pairs if 0 < val_pairs < n_pairs else 1


def folds(n_pairs: int, val_pairs: int, val_fold: int) -> tuple[torch.Tensor, slice]:
    """(kept, held) of a round's training pairs: fold 0 holds out the last `val_pairs`, fold k the
    `val_pairs` before fold k-1's (k-fold validation); the rest train, in their drawn order."""
    if not 0 <= val_pairs < n_pairs:
        raise ValueError(f"val_pairs must be in [0, {n_pairs}), got {val_pairs}")
    if not 0 <= val_fold < fold_count(n_pairs, val_pairs):
        raise ValueError(
            f"val_fold {val_fold} is not one of the {n_pairs} pairs' folds of {val_pairs}"
        )
    start, stop = n_pairs - (val_fold + 1) * val_pairs, n_pairs - val_fold * val_pairs
    return torch.cat((torch.arange(start), torch.arange(stop, n_pairs))), slice(start, stop)


def mnist_to_pairs(
    n: int, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
) -> PairSet:
    """The course's `mnist_to_pairs`, with an explicit generator."""
    idx = draw_pairs(n, len(images), generator)
    classes = labels[idx]  # (n, 2)
    # The course pools the whole split, then indexes; pooling only the 2n drawn images gives the
    # same values (each output pixel is the mean of its own 2x2 block) at a fraction of the cost.
    x = F.avg_pool2d(images[idx].view(2 * n, 1, 28, 28).float(), kernel_size=2)  # (2n, 1, 14, 14)
    return PairSet(
        input=x.view(n, 2, 14, 14),  # (n, 2, 14, 14)
        target=(classes[:, 0] <= classes[:, 1]).long(),
        classes=classes,
    )


@dataclass(frozen=True)
class RoundData:
    train: PairSet
    val: PairSet  # carved from the training pairs; every selection decision looks here only
    test: PairSet  # looked at once per run, after selection


class MNIST:
    """Both MNIST splits in memory, so a study loads them once and draws many rounds."""

    source = "mnist"

    def __init__(self, data_dir: str | os.PathLike | None = None, download: bool = True):
        self.train_images, self.train_labels = load_mnist(True, data_dir, download)
        self.test_images, self.test_labels = load_mnist(False, data_dir, download)

    def round(
        self, data_seed: int, n_pairs: int = 1000, val_pairs: int = 200, val_fold: int = 0
    ) -> RoundData:
        """`generate_pair_sets(n_pairs)` under `data_seed`, `val_pairs` train pairs held out
        (`folds`)."""
        kept, held = folds(n_pairs, val_pairs, val_fold)
        g = torch.Generator().manual_seed(data_seed)
        train = mnist_to_pairs(n_pairs, self.train_images, self.train_labels, g)
        test = mnist_to_pairs(n_pairs, self.test_images, self.test_labels, g)
        return RoundData(train=train[kept], val=train[held], test=test)

    def round_digits(
        self, data_seed: int, n_pairs: int = 1000, val_pairs: int = 200, val_fold: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Which MNIST-train images `round` pairs up: (training digits, validation digits), flat
        indices into `train_images`, in the order of `round(...).train` and `.val`."""
        kept, held = folds(n_pairs, val_pairs, val_fold)
        index = draw_pairs(
            n_pairs, len(self.train_images), torch.Generator().manual_seed(data_seed)
        )
        return index[kept].flatten(), index[held].flatten()


def synthetic_mnist(n_train: int = 600, n_test: int = 200, seed: int = 0) -> MNIST:
    """A tiny stand-in with MNIST's shapes, for `--dry-run` and unit tests that need no real
    digits."""
    g = torch.Generator().manual_seed(seed)
    fake = MNIST.__new__(MNIST)
    fake.source = SYNTHETIC
    fake.train_images = torch.randint(0, 256, (n_train, 28, 28), generator=g, dtype=torch.uint8)
    fake.train_labels = torch.randint(0, 10, (n_train,), generator=g)
    fake.test_images = torch.randint(0, 256, (n_test, 28, 28), generator=g, dtype=torch.uint8)
    fake.test_labels = torch.randint(0, 10, (n_test,), generator=g)
    return fake
