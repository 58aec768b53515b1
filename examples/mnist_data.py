"""MNIST for the examples: find the full set on disk, or fall back to the shipped subset.

The full set is looked for in torchvision's layout (`<root>/MNIST/raw/<four IDX files>`, plain or
`.gz`). A small real-MNIST subset ships next to this module (`examples/data/mnist-subset/`, see its
README) so that the demo trains offline on a fresh machine.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import torch

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DOWNLOAD_ENV = ("MNIST_ALLOW_DOWNLOAD", "CLOUD_MNIST_OK", "CODEX_CLOUD")
IMAGE_MAGIC = 2051  # IDX: unsigned byte, 3 dimensions
LABEL_MAGIC = 2049  # IDX: unsigned byte, 1 dimension
MEAN, STD = 0.1307, 0.3081  # the normalization of the pytorch/examples MNIST script


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


class MnistFormatError(ValueError):
    """An MNIST file exists but is not a valid IDX file of the expected shape."""


@dataclass(frozen=True)
class MnistSplit:
    images: torch.Tensor  # uint8, N x 28 x 28
    labels: torch.Tensor  # int64, N
    source: str  # where it came from, for logs
    files: tuple[str, ...] = ()  # the IDX files read (replay records their digests)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def normalized(self) -> torch.Tensor:
        """float32 N x 1 x 28 x 28, scaled and normalized like torchvision's transform chain."""
        x = self.images.to(torch.float32).div_(255.0)
        return x.sub_(MEAN).div_(STD).unsqueeze_(1)


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


def _raw_file(raw: Path, name: str) -> Path | None:
    for candidate in (raw / name, raw / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def has_mnist(root: Path) -> bool:
    raw = Path(root) / "MNIST" / "raw"
    return all(_raw_file(raw, n) is not None for pair in FILES.values() for n in pair)


def find_mnist(data_dir: str | os.PathLike | None = None) -> Path | None:
    """First searched root that holds all four MNIST files, or None."""
    for root in candidate_roots(data_dir):
        if has_mnist(root):
            return root
    return None


def _read_idx(path: Path, magic: int) -> tuple[tuple[int, ...], bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise MnistFormatError(f"{path}: cannot read ({e})") from e
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MnistFormatError(f"{path}: truncated header ({len(data)} bytes)")
    (found,) = struct.unpack(">i", data[:4])
    if found != magic:
        raise MnistFormatError(f"{path}: bad magic number {found}, expected {magic}")
    shape = struct.unpack(f">{ndim}i", data[4:header])
    count = 1
    for d in shape:
        count *= d
    if len(data) - header != count:
        raise MnistFormatError(
            f"{path}: {len(data) - header} data bytes, header {shape} says {count}"
        )
    return shape, data[header:]


def read_split(raw: Path, split: str, source: str | None = None) -> MnistSplit:
    """Reads one split ("train" or "test") from a folder of IDX files (plain or .gz)."""
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    raw = Path(raw)
    image_name, label_name = FILES[split]
    paths = [_raw_file(raw, image_name), _raw_file(raw, label_name)]
    if paths[0] is None or paths[1] is None:
        raise FileNotFoundError(f"{raw}: missing {image_name} or {label_name} (plain or .gz)")
    ishape, ibytes = _read_idx(paths[0], IMAGE_MAGIC)
    lshape, lbytes = _read_idx(paths[1], LABEL_MAGIC)
    if ishape[1:] != (28, 28) or ishape[0] != lshape[0]:
        raise MnistFormatError(f"{raw}: images {ishape} do not match labels {lshape}")
    images = torch.frombuffer(bytearray(ibytes), dtype=torch.uint8).view(ishape)
    labels = torch.frombuffer(bytearray(lbytes), dtype=torch.uint8).to(torch.int64)
    if int(labels.max()) > 9:
        raise MnistFormatError(f"{paths[1]}: label {int(labels.max())} out of range 0..9")
    return MnistSplit(images, labels, source or str(raw), tuple(str(p) for p in paths))


def shipped_dir() -> Path:
    """Folder of the subset shipped inside the package (gzip IDX files)."""
    return Path(__file__).resolve().parent / "data" / "mnist-subset"


def load_shipped(split: str) -> MnistSplit:
    return read_split(shipped_dir(), split, source="shipped subset")


def load_full(root: Path, split: str) -> MnistSplit:
    return read_split(Path(root) / "MNIST" / "raw", split, source=str(root))


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
