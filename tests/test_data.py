import gzip
import random
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from digitpair.core.data import DataError, load_mnist, mnist_to_pairs
from digitpair.lab.cli import app


def test_real_mnist_shapes(mnist):
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.train_images.dtype == torch.uint8
    assert mnist.test_images.shape == (10000, 28, 28)
    assert set(mnist.train_labels.unique().tolist()) == set(range(10))


def test_pairs_match_course_semantics(mnist):
    g = torch.Generator().manual_seed(3)
    pairs = mnist_to_pairs(1000, mnist.train_images, mnist.train_labels, g)
    assert pairs.input.shape == (1000, 2, 14, 14) and pairs.input.dtype == torch.float32
    assert (
        pairs.input.min() >= 0 and pairs.input.max() <= 255 and pairs.input.max() > 200
    )  # raw 0-255
    assert torch.equal(pairs.target, (pairs.classes[:, 0] <= pairs.classes[:, 1]).long())
    # Same draw as the course code: first 2N of one permutation, paired in order, 2x2 avg-pooled.
    idx = torch.randperm(60000, generator=torch.Generator().manual_seed(3))[:2000].view(1000, 2)
    assert len(idx.flatten().unique()) == 2000  # all digits distinct
    pooled = torch.nn.functional.avg_pool2d(mnist.train_images[idx[:, 1]].float()[:, None], 2)[:, 0]
    assert torch.equal(pairs.input[:, 1], pooled)
    assert torch.equal(pairs.classes, mnist.train_labels[idx])


def test_round_is_seed_deterministic_and_splits_are_separate(mnist):
    a, b, c = mnist.round(7), mnist.round(7), mnist.round(8)
    assert torch.equal(a.train.input, b.train.input) and torch.equal(a.test.input, b.test.input)
    assert not torch.equal(a.train.input, c.train.input)
    assert (len(a.train), len(a.val), len(a.test)) == (800, 200, 1000)

    # Validation pairs are training-split pairs held out from training: no image in common.
    def flat(p):
        return {row.numpy().tobytes() for row in p.input.flatten(0, 1)}

    assert not flat(a.train) & flat(a.val)
    # Test pairs come from MNIST-test: pooled test images, not training ones.
    test_pool = torch.nn.functional.avg_pool2d(mnist.test_images[:, None].float(), 2)[:, 0]
    assert a.test.input[0, 0].numpy().tobytes() in {t.numpy().tobytes() for t in test_pool}


@pytest.mark.parametrize("val_pairs, val_fold", [(200, 0), (200, 3), (0, 0)])
def test_round_digits_are_the_images_round_pairs(mnist, val_pairs, val_fold):
    """round_digits names the MNIST-train images of a round's training and validation pairs, in
    order."""
    rnd = mnist.round(5, 1000, val_pairs, val_fold)
    train, val = mnist.round_digits(5, 1000, val_pairs, val_fold)

    def pooled(index):
        return torch.nn.functional.avg_pool2d(mnist.train_images[index][:, None].float(), 2)[:, 0]

    assert torch.equal(pooled(train), rnd.train.input.flatten(0, 1))
    assert torch.equal(pooled(val), rnd.val.input.flatten(0, 1))
    assert torch.equal(mnist.train_labels[train], rnd.train.classes.flatten())


def test_global_rng_untouched(mnist):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    mnist.round(1)
    assert torch.equal(torch.rand(3), expected)


def _copy_split(src_dir, dst, corrupt=None):
    for stem in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        shutil.copy(src_dir / f"{stem}.gz", dst / f"{stem}.gz")
    if corrupt:
        with gzip.open(dst / f"{corrupt}.gz", "rb") as f:
            raw = f.read()
        with gzip.open(dst / f"{corrupt}.gz", "wb") as f:
            f.write(raw[:-100])


def test_missing_data_message(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path)):
        load_mnist(False, tmp_path, download=False)


def test_a_failed_download_says_why_and_how_to_provide_the_files_and_leaves_nothing(
    tmp_path, monkeypatch
):
    import torchvision.datasets

    def offline(
        root, **kwargs
    ):  # torchvision makes its folders, then fails with a message of several lines
        (Path(root) / "MNIST" / "raw").mkdir(parents=True)
        raise RuntimeError(
            "Error downloading train-images-idx3-ubyte.gz:\nTried https://example/, got:\n"
            "<urlopen error [Errno -2] Name or service not known>\n"
        )

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(DataError) as raised:
        load_mnist(True, tmp_path)
    first, reason, *ways = str(raised.value).splitlines()
    assert first == f"MNIST not found under {tmp_path}, and downloading it failed:"
    assert reason.strip().startswith("RuntimeError: Error downloading train-images-idx3-ubyte.gz")
    assert "Name or service not known" in reason
    assert "t10k-labels-idx1-ubyte[.gz]" in ways[0] and len(ways) == 5  # the four ways, one a line
    assert [way.split(".", 1)[0].strip() for way in ways[1:]] == ["1", "2", "3", "4"]
    assert all(
        way in "\n".join(ways)
        for way in (
            str(tmp_path / "MNIST" / "raw"),
            "--data-dir",
            "$DIGITPAIR_DATA",
            "download=True",
        )
    )
    assert not list(tmp_path.iterdir())  # the empty MNIST/raw tree the attempt made is gone


def test_truncated_file_is_reported(tmp_path):
    from tests.conftest import SHARED

    if not SHARED.is_dir():
        pytest.skip("shared MNIST copy not present")
    _copy_split(SHARED, tmp_path, corrupt="t10k-labels-idx1-ubyte")
    with pytest.raises(DataError, match="t10k-labels"):
        load_mnist(False, tmp_path, download=False)
    assert load_mnist(True, tmp_path, download=False)[0].shape == (60000, 28, 28)


def flip_bit(path, byte: int, bit: int = 0):
    data = bytearray(path.read_bytes())
    data[byte] ^= 1 << bit
    path.write_bytes(bytes(data))


def test_a_damaged_gzip_is_a_data_error_naming_the_file(tmp_path):
    from tests.conftest import SHARED

    if not SHARED.is_dir():
        pytest.skip("shared MNIST copy not present")
    _copy_split(SHARED, tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    original = labels.read_bytes()
    expected = load_mnist(False, tmp_path, download=False)[1]
    flip_bit(labels, 343)  # inside the deflate stream: zlib.error
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz is damaged \(error"):
        load_mnist(False, tmp_path, download=False)
    rng = random.Random(16)
    for _ in range(12):  # anywhere: a DataError, or the same labels
        labels.write_bytes(original)
        flip_bit(labels, rng.randrange(len(original)), rng.randrange(8))
        try:
            assert torch.equal(load_mnist(False, tmp_path, download=False)[1], expected)
        except DataError as e:
            assert "t10k-labels-idx1-ubyte.gz" in str(e)
    labels.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz is damaged"):
        load_mnist(False, tmp_path, download=False)
    labels.write_bytes(
        gzip.compress((2051).to_bytes(4, "big") + (10000).to_bytes(4, "big") + bytes(10000))
    )
    with pytest.raises(
        DataError, match="t10k-labels-idx1-ubyte.gz is not an MNIST IDX file"
    ):  # an images magic
        load_mnist(False, tmp_path, download=False)


def test_train_on_damaged_data_exits_with_a_message(tmp_path):
    from tests.conftest import SHARED

    if not SHARED.is_dir():
        pytest.skip("shared MNIST copy not present")
    _copy_split(SHARED, tmp_path)
    flip_bit(tmp_path / "t10k-labels-idx1-ubyte.gz", 343)
    result = CliRunner().invoke(app, ["train", "--set", "epochs=1", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)  # no traceback
    assert "t10k-labels-idx1-ubyte.gzisdamaged" in "".join(
        result.output.split()
    )  # rich wraps anywhere


def test_checksum_mismatch_is_reported(tmp_path):
    from tests.conftest import SHARED

    if not SHARED.is_dir():
        pytest.skip("shared MNIST copy not present")
    _copy_split(SHARED, tmp_path)
    (tmp_path / "SHA256SUMS.uncompressed").write_text("0" * 64 + "  t10k-labels-idx1-ubyte\n")
    with pytest.raises(DataError, match="SHA256SUMS"):
        load_mnist(False, tmp_path, download=False)


def test_torchvision_layout(tmp_path):
    from tests.conftest import SHARED

    if not SHARED.is_dir():
        pytest.skip("shared MNIST copy not present")
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in (
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):  # uncompressed, as torchvision leaves them
        with gzip.open(SHARED / f"{stem}.gz") as f:
            (raw / stem).write_bytes(f.read())
    images, labels = load_mnist(False, tmp_path, download=False)
    assert images.shape == (10000, 28, 28) and len(labels) == 10000
