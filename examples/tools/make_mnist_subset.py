"""Builds the MNIST subset shipped in examples/data/mnist-subset/ from the four raw IDX files.

The subset is the first N_TRAIN training and the first N_TEST test images, in file order, so
it is deterministic and reproducible from the official files. Output files are gzip IDX files
with mtime 0, so a rebuild gives byte-identical files.

    python examples/tools/make_mnist_subset.py [--raw ../shared/data/MNIST/raw] [--out examples/data/mnist-subset]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import struct
import sys
from pathlib import Path

N_TRAIN = 20_000
N_TEST = 2_000
FILES = {
    "train-images-idx3-ubyte": (2051, N_TRAIN),
    "train-labels-idx1-ubyte": (2049, N_TRAIN),
    "t10k-images-idx3-ubyte": (2051, N_TEST),
    "t10k-labels-idx1-ubyte": (2049, N_TEST),
}


def first_n(data: bytes, magic: int, n: int) -> bytes:
    """The IDX file `data` cut to its first n items (header rewritten)."""
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    (found,) = struct.unpack(">i", data[:4])
    if found != magic:
        raise ValueError(f"bad magic {found}, expected {magic}")
    shape = list(struct.unpack(f">{ndim}i", data[4:header]))
    if shape[0] < n:
        raise ValueError(f"file has {shape[0]} items, fewer than {n}")
    item = 1
    for d in shape[1:]:
        item *= d
    shape[0] = n
    return struct.pack(f">i{ndim}i", magic, *shape) + data[header : header + n * item]


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=repo.parent / "shared/data/MNIST/raw")
    parser.add_argument("--out", type=Path, default=repo / "examples/data/mnist-subset")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (magic, n) in FILES.items():
        src = args.raw / name
        if not src.is_file():
            print(f"missing {src}", file=sys.stderr)
            return 2
        cut = first_n(src.read_bytes(), magic, n)
        dest = args.out / f"{name}.gz"
        with open(dest, "wb") as raw_out, gzip.GzipFile(
            filename="", mode="wb", fileobj=raw_out, compresslevel=9, mtime=0
        ) as f:
            f.write(cut)
        digest = hashlib.sha256(dest.read_bytes()).hexdigest()
        print(f"{dest.name}: {n} items, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
