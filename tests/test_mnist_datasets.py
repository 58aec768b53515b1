"""examples/mnist_data.py: the MNIST finder, the IDX reader and the shipped subset."""

from __future__ import annotations

import gzip
import hashlib
import struct
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "examples"))
import mnist_data as datasets  # noqa: E402


def _write_idx(path: Path, magic: int, shape: tuple[int, ...], fill: int = 0) -> None:
    n = 1
    for d in shape:
        n *= d
    path.write_bytes(struct.pack(f">i{len(shape)}i", magic, *shape) + bytes([fill]) * n)


def _fake_root(root: Path, n_train: int = 3, n_test: int = 2) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = datasets.FILES[split]
        _write_idx(raw / images, datasets.IMAGE_MAGIC, (n, 28, 28), fill=7)
        _write_idx(raw / labels, datasets.LABEL_MAGIC, (n,), fill=3)
    return root


def test_shipped_subset_is_the_first_items_with_all_classes():
    train, test = datasets.load_shipped("train"), datasets.load_shipped("test")
    assert (len(train), len(test)) == (20_000, 2_000)
    assert train.images.shape == (20_000, 28, 28) and train.images.dtype.is_floating_point is False
    assert train.labels.bincount(minlength=10).min() >= 1700
    assert test.labels.bincount(minlength=10).min() >= 150
    x = test.normalized()
    assert x.shape == (2_000, 1, 28, 28)
    assert abs(float(x.mean())) < 0.2 and 0.8 < float(x.std()) < 1.2


def test_subset_matches_full_set(mnist_root):
    full = datasets.load_full(mnist_root, "test")
    sub = datasets.load_shipped("test")
    assert (full.images[:2000] == sub.images).all() and (full.labels[:2000] == sub.labels).all()


def test_subset_rebuild_is_byte_identical(tmp_path, mnist_root):
    script = REPO / "examples" / "tools" / "make_mnist_subset.py"
    subprocess.run(
        [sys.executable, str(script), "--raw", str(mnist_root / "MNIST" / "raw"),
         "--out", str(tmp_path)], check=True, capture_output=True,
    )
    for f in datasets.shipped_dir().glob("*.gz"):
        assert hashlib.sha256((tmp_path / f.name).read_bytes()).digest() == \
            hashlib.sha256(f.read_bytes()).digest(), f.name


def test_search_order_and_explicit_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUSTORCH_DATA", raising=False)
    assert datasets.candidate_roots() == [Path("data"), Path("../shared/data")]
    env_root = _fake_root(tmp_path / "env")
    monkeypatch.setenv("RUSTORCH_DATA", str(env_root))
    assert datasets.find_mnist() == env_root
    # --data is strict: only that folder is searched
    assert datasets.candidate_roots(tmp_path / "x") == [tmp_path / "x"]
    assert datasets.find_mnist(tmp_path / "x") is None


def test_resolve_falls_back_to_subset_or_refuses(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RUSTORCH_DATA", str(tmp_path / "nothing"))
    for k in datasets.DOWNLOAD_ENV:
        monkeypatch.delenv(k, raising=False)
    if datasets.find_mnist() is not None:  # ../shared/data may exist next to tmp_path
        pytest.skip("a full MNIST is reachable from the temporary folder")
    assert datasets.resolve() is None  # default search: the shipped subset
    with pytest.raises(datasets.MnistNotFound) as e:
        datasets.resolve(tmp_path / "given")
    msg = str(e.value)
    assert str(tmp_path / "given") in msg and "MNIST_ALLOW_DOWNLOAD=1" in msg


def test_download_switches():
    assert not datasets.download_allowed({})
    assert not datasets.download_allowed({"MNIST_ALLOW_DOWNLOAD": "0"})
    for k in ("MNIST_ALLOW_DOWNLOAD", "CLOUD_MNIST_OK", "CODEX_CLOUD"):
        assert datasets.download_allowed({k: "1"})


def test_reads_gz_and_plain(tmp_path):
    root = _fake_root(tmp_path / "r")
    raw = root / "MNIST" / "raw"
    name = datasets.FILES["train"][0]
    (raw / f"{name}.gz").write_bytes(gzip.compress((raw / name).read_bytes()))
    (raw / name).unlink()
    split = datasets.load_full(root, "train")
    assert len(split) == 3 and int(split.images[0, 0, 0]) == 7 and int(split.labels[0]) == 3


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda p: p.write_bytes(p.read_bytes()[:-5]), "data bytes"),
        (lambda p: p.write_bytes(struct.pack(">i", 1234) + p.read_bytes()[4:]), "bad magic"),
        (lambda p: p.write_bytes(b"\x00\x00"), "truncated"),
    ],
)
def test_corrupt_files_are_refused_clearly(tmp_path, corrupt, message):
    root = _fake_root(tmp_path / "r")
    corrupt(root / "MNIST" / "raw" / datasets.FILES["test"][0])
    with pytest.raises(datasets.MnistFormatError, match=message):
        datasets.load_full(root, "test")


def test_label_out_of_range(tmp_path):
    root = _fake_root(tmp_path / "r")
    _write_idx(root / "MNIST" / "raw" / datasets.FILES["test"][1], datasets.LABEL_MAGIC, (2,), 11)
    with pytest.raises(datasets.MnistFormatError, match="out of range"):
        datasets.load_full(root, "test")


def test_extract_shipped_gives_torchvision_layout(tmp_path):
    root = datasets.extract_shipped(tmp_path / "d")
    assert datasets.has_mnist(root)
    assert datasets.load_full(root, "train").labels.shape == (20_000,)
