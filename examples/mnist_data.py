"""MNIST for the examples: find the full set on disk, or fall back to the shipped subset.

What is MNIST-specific lives here: where the examples look for the full set ($RUSTORCH_DATA,
./data, ../shared/data, each in torchvision's layout `<root>/MNIST/raw/<four IDX files>`, plain
or `.gz`), the gated download, and the small real-MNIST subset shipped next to this module
(`examples/data/mnist-subset/`, see its README) so that the demo trains offline on a fresh
machine. Reading the files is `rustorch_tools.train.idx` (the generic, hostile-file-safe IDX
reader the trainer's `mnist` dataset uses too); `data_root()` gives the folder to hand to it.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import torch

from rustorch_tools.train import idx

FILES = idx.SPLITS
DOWNLOAD_ENV = ("MNIST_ALLOW_DOWNLOAD", "CLOUD_MNIST_OK", "CODEX_CLOUD")
IMAGE_MAGIC = idx.IMAGE_MAGIC  # 2051: IDX, unsigned byte, 3 dimensions
LABEL_MAGIC = idx.LABEL_MAGIC  # 2049: IDX, unsigned byte, 1 dimension
MEAN, STD = 0.1307, 0.3081  # the normalization of the pytorch/examples MNIST script
MnistFormatError = idx.IdxFormatError  # an MNIST file exists but is not a valid IDX file


class MnistNotFound(FileNotFoundError):
    """No MNIST under any searched folder and downloading is not allowed."""

    def __init__(self, searched: list[Path]) -> None:
        self.searched = searched
        folders = "\n".join(f"  {p}" for p in searched) or "  (none)"
        super().__init__(
            "MNIST not found. Searched (each for MNIST/raw/<IDX files>):\n"
            f"{folders}\n"
            "Pass --data DIR or set RUSTORCH_DATA, or allow the download with "
            "MNIST_ALLOW_DOWNLOAD=1 (also accepted: CLOUD_MNIST_OK=1, CODEX_CLOUD=1)."
        )


class MnistSplit(idx.ImageSplit):
    """One split read by `idx.read_split`, normalized like the pytorch/examples script."""

    def normalized(self, mean: float = MEAN, std: float = STD) -> torch.Tensor:
        """float32 N x 1 x 28 x 28, scaled and normalized like torchvision's transform chain."""
        return super().normalized(mean, std)


def download_allowed(env: dict[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return any(env.get(k, "").strip().lower() in ("1", "true", "yes") for k in DOWNLOAD_ENV)


def candidate_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched, in order: $RUSTORCH_DATA, ./data, ../shared/data.

    An explicit `data_dir` (--data) is the only folder searched: asking for a folder and silently
    training on another would mislead.
    """
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    roots: list[Path] = []
    if os.environ.get("RUSTORCH_DATA"):
        roots.append(Path(os.environ["RUSTORCH_DATA"]))
    roots += [Path("data"), Path("..") / "shared" / "data"]
    return [r.expanduser() for r in roots]


def has_mnist(root: Path) -> bool:
    raw = Path(root) / "MNIST" / "raw"
    return raw.is_dir() and idx.has_splits(raw)


def find_mnist(data_dir: str | os.PathLike | None = None) -> Path | None:
    """First searched root that holds all four MNIST files, or None."""
    for root in candidate_roots(data_dir):
        if has_mnist(root):
            return root
    return None


def read_split(raw: Path, split: str, source: str | None = None) -> MnistSplit:
    """Reads one split ("train" or "test") from a folder of IDX files (plain or .gz); the
    images must be 28 x 28."""
    got = idx.read_split(raw, split, dataset="MNIST", num_classes=10)
    if tuple(got.images.shape[1:]) != (28, 28):
        raise MnistFormatError(f"{got.files[0]}: images are {tuple(got.images.shape[1:])}, not 28 x 28")
    return MnistSplit(got.images, got.labels, source or str(raw), got.files)


def shipped_dir() -> Path:
    """Folder of the subset shipped with the examples (gzip IDX files, directly inside)."""
    return Path(__file__).resolve().parent / "data" / "mnist-subset"


def load_shipped(split: str) -> MnistSplit:
    return read_split(shipped_dir(), split, source="shipped subset")


def load_full(root: Path, split: str) -> MnistSplit:
    return read_split(Path(root) / "MNIST" / "raw", split, source=str(root))


def data_root(data_dir: str | os.PathLike | None = None, subset: bool = False) -> Path:
    """The folder to train on, for the trainer's `mnist` dataset (`root = ...`): full MNIST as
    `resolve` finds it, else (default search only) the shipped subset's folder."""
    root = None if subset else resolve(data_dir)
    return shipped_dir() if root is None else root


def download(root: Path) -> Path:
    """Downloads full MNIST into `root` with torchvision (only when allowed by the caller)."""
    from torchvision import datasets

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for train in (True, False):
        datasets.MNIST(str(root), train=train, download=True)
    return root


def resolve(data_dir: str | os.PathLike | None = None, allow_subset: bool = True) -> Path | None:
    """Where the full set is: found, or downloaded when allowed; None means use the subset.

    The subset is only a fallback of the default search; with an explicit `data_dir`, or with
    `allow_subset=False`, MnistNotFound is raised when nothing is found and downloading is off.
    """
    allow_subset = allow_subset and data_dir is None
    root = find_mnist(data_dir)
    if root is not None:
        return root
    if download_allowed():
        return download(Path(data_dir) if data_dir is not None else Path("data"))
    if allow_subset:
        return None
    raise MnistNotFound(candidate_roots(data_dir))


def extract_shipped(dest: str | os.PathLike) -> Path:
    """Writes the shipped subset uncompressed into torchvision's layout; returns the root."""
    raw = Path(dest) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for pair in FILES.values():
        for name in pair:
            with gzip.open(shipped_dir() / f"{name}.gz", "rb") as f:
                (raw / name).write_bytes(f.read())
    return Path(dest)
