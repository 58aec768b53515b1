"""Image classification data in IDX files (the MNIST format), in torchvision's folder layout.

A data folder `root` holds four files, plain or gzip-compressed (`NAME` or `NAME.gz`):

    train-images-idx3-ubyte   train-labels-idx1-ubyte   t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte

either directly, in `root/raw/`, or in `root/<Dataset>/raw/` (torchvision's layout:
`root/MNIST/raw/`, `root/FashionMNIST/raw/`, ...; `dataset` names the subfolder). MNIST,
Fashion-MNIST and KMNIST ship this way. Nothing here searches other folders or downloads:
the caller names the folder.

Every file is treated as hostile: only regular files are read (a FIFO or a device is refused,
never blocked on), compressed and decompressed sizes are bounded (`max_bytes`), the magic
number, element type, dimensions and data length are checked before anything is allocated,
and every problem is an `IdxFormatError` (or `IdxNotFound`) naming the file.
"""

from __future__ import annotations

import gzip
import os
import stat
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch

SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_MAGIC = 0x0803  # unsigned byte, 3 dimensions
LABEL_MAGIC = 0x0801  # unsigned byte, 1 dimension
# IDX element types: code -> (torch dtype, bytes per element); multi-byte types are big-endian.
TYPES: dict[int, tuple[torch.dtype, int]] = {
    0x08: (torch.uint8, 1), 0x09: (torch.int8, 1), 0x0B: (torch.int16, 2),
    0x0C: (torch.int32, 4), 0x0D: (torch.float32, 4), 0x0E: (torch.float64, 8),
}
MAX_BYTES = 1 << 30  # 1 GiB per decompressed file (full MNIST's largest is 47 MB)
MAX_DIMS = 8
_CHUNK = 1 << 20


class IdxNotFound(FileNotFoundError):
    """A data folder without the IDX files of a split."""


class IdxFormatError(ValueError):
    """An IDX file that exists but cannot be used (not regular, too big, bad header or length)."""


@dataclass(frozen=True)
class ImageSplit:
    """One split: uint8 images N x H x W, int64 labels N, and where they came from."""

    images: torch.Tensor
    labels: torch.Tensor
    source: str  # the folder read, for logs
    files: tuple[str, ...] = ()  # the files read (replay records their digests)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def normalized(self, mean: float, std: float) -> torch.Tensor:
        """float32 N x 1 x H x W: pixels scaled to [0, 1], then (x - mean) / std, like
        torchvision's ToTensor + Normalize."""
        x = self.images.to(torch.float32).div_(255.0)
        return x.sub_(mean).div_(std).unsqueeze_(1)


def _file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def raw_folders(root: str | os.PathLike[str], dataset: str = "MNIST") -> list[Path]:
    """The folders that may hold the files, in the order they are tried."""
    root = Path(root).expanduser()
    return [root, root / "raw", root / dataset / "raw"]


def split_files(root: str | os.PathLike[str], split: str, dataset: str = "MNIST") -> tuple[Path, Path]:
    """(images, labels) files of `split` ("train" or "test") under `root`: the first folder of
    `raw_folders` that holds both; IdxNotFound names every folder tried."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, not {split!r}")
    image_name, label_name = SPLITS[split]
    folders = raw_folders(root, dataset)
    for folder in folders:
        images, labels = _file(folder, image_name), _file(folder, label_name)
        if images is not None and labels is not None:
            return images, labels
    tried = ", ".join(str(f) for f in folders)
    raise IdxNotFound(f"{root}: no {image_name} and {label_name} (plain or .gz) in {tried}")


def has_splits(root: str | os.PathLike[str], dataset: str = "MNIST") -> bool:
    """Whether `root` holds the files of both splits."""
    try:
        for split in SPLITS:
            split_files(root, split, dataset)
    except IdxNotFound:
        return False
    return True


def _read_bounded(path: Path, max_bytes: int) -> bytes:
    """The (decompressed) bytes of a regular file, at most `max_bytes`, else IdxFormatError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise IdxFormatError(f"{path}: cannot open ({e.strerror or e})") from None
    with os.fdopen(fd, "rb") as raw:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IdxFormatError(f"{path}: not a regular file")
        if st.st_size > max_bytes:
            raise IdxFormatError(f"{path}: {st.st_size} bytes, more than the limit of {max_bytes}")
        try:
            if path.suffix != ".gz":
                return raw.read()
            out = bytearray()
            with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                while chunk := f.read(_CHUNK):
                    out += chunk
                    if len(out) > max_bytes:
                        raise IdxFormatError(f"{path}: decompresses to more than {max_bytes} bytes")
            return bytes(out)
        except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            raise IdxFormatError(f"{path}: cannot read ({e})") from None


def read_idx(path: str | os.PathLike[str], max_bytes: int = MAX_BYTES) -> torch.Tensor:
    """The array in one IDX file (plain or .gz), in its own dtype and shape."""
    path = Path(path)
    data = _read_bounded(path, max_bytes)
    if len(data) < 4:
        raise IdxFormatError(f"{path}: truncated header ({len(data)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in TYPES or not 1 <= ndim <= MAX_DIMS:
        raise IdxFormatError(f"{path}: bad magic number {int.from_bytes(data[:4], 'big')} "
                             f"(not an IDX file of 1..{MAX_DIMS} dimensions)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxFormatError(f"{path}: truncated header ({len(data)} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype, size = TYPES[code]
    count = size
    for d in shape:
        count *= d  # Python ints: a forged huge shape cannot overflow, only mismatch below
    if len(data) - header != count:
        raise IdxFormatError(f"{path}: {len(data) - header} data bytes, header {shape} says {count}")
    flat = torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8) if count else torch.empty(0, dtype=torch.uint8)
    if size > 1 and sys.byteorder == "little":
        flat = flat.view(-1, size).flip(1).contiguous().view(-1)  # big-endian -> native order
    return flat.view(dtype).view(shape)


def read_split(root: str | os.PathLike[str], split: str, *, dataset: str = "MNIST",
               num_classes: int | None = 10, max_bytes: int = MAX_BYTES) -> ImageSplit:
    """One split of an image classification set: 3-d uint8 images and 1-d labels of the same
    length, labels in 0..num_classes-1 (unchecked when None)."""
    image_path, label_path = split_files(root, split, dataset)
    images, labels = read_idx(image_path, max_bytes), read_idx(label_path, max_bytes)
    if images.dtype != torch.uint8 or images.dim() != 3:
        raise IdxFormatError(f"{image_path}: expected uint8 images N x H x W, got {images.dtype} "
                             f"{tuple(images.shape)}")
    if labels.dtype != torch.uint8 or labels.dim() != 1:
        raise IdxFormatError(f"{label_path}: expected uint8 labels N, got {labels.dtype} {tuple(labels.shape)}")
    if images.shape[0] != labels.shape[0]:
        raise IdxFormatError(f"{image_path.parent}: {images.shape[0]} images but {labels.shape[0]} labels")
    labels = labels.to(torch.int64)
    if num_classes is not None and len(labels) and int(labels.max()) >= num_classes:
        raise IdxFormatError(f"{label_path}: label {int(labels.max())} out of range 0..{num_classes - 1}")
    return ImageSplit(images, labels, str(root), (str(image_path), str(label_path)))
