"""Shared pytest set-up. The device registers on `import torch` (autoload entry point)."""

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# examples/mnist_net.py holds the one MNIST Net the tests share with the benchmarks.
sys.path.insert(0, str(REPO / "examples"))
SHARED_MNIST = REPO.parent / "shared" / "data"


@pytest.fixture
def mnist_root() -> Path:
    """Folder holding MNIST/raw (the shared full set); skips when absent."""
    root = Path(os.environ.get("RUSTORCH_DATA", SHARED_MNIST))
    if not (root / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        pytest.skip(f"full MNIST not found under {root}")
    return root
