"""rustorch_tools.train.idx (the generic IDX reader) and the trainer's `mnist` dataset, which
reads only the folder it is given; `run_config(on_run_start=...)`; `${pipeline.dir}` in [vars]."""

from __future__ import annotations

import gzip
import os
import struct
import threading
from pathlib import Path

import pytest
import torch

from rustorch_tools.pipeline.spec import PipelineError, parse
from rustorch_tools.train import ConfigError, idx, resolve, run_config
from rustorch_tools.train.data import mnist, mnist_files
from rustorch_tools.train.registry import DATASETS

REPO = Path(__file__).resolve().parent.parent
SUBSET = REPO / "examples" / "data" / "mnist-subset"


def _idx(path: Path, shape: tuple[int, ...], data: bytes, code: int = 0x08, gz: bool = False) -> Path:
    blob = struct.pack(">HBB", 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape) + data
    if gz:
        path = path.with_name(path.name + ".gz")
        blob = gzip.compress(blob, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return path


def _fake(folder: Path, n: int = 4, label: int = 3, gz: bool = False) -> Path:
    for split in idx.SPLITS:
        images, labels = idx.SPLITS[split]
        _idx(folder / images, (n, 28, 28), bytes([9]) * (n * 784), gz=gz)
        _idx(folder / labels, (n,), bytes([label]) * n, gz=gz)
    return folder


@pytest.mark.parametrize("layout", ["", "raw", "MNIST/raw"])
def test_every_torchvision_layout_is_found_and_nothing_else(tmp_path, layout):
    root = tmp_path / "root"
    _fake(root / layout if layout else root, gz=layout == "raw")
    split = idx.read_split(root, "train")
    assert split.images.shape == (4, 28, 28) and split.labels.tolist() == [3, 3, 3, 3]
    assert all(Path(f).parent == (root / layout if layout else root) for f in split.files)
    with pytest.raises(idx.IdxNotFound) as e:  # a sibling folder is never searched
        idx.read_split(tmp_path / "elsewhere", "test")
    assert str(tmp_path / "elsewhere" / "MNIST" / "raw") in str(e.value)


def test_multibyte_types_are_big_endian(tmp_path):
    values = torch.tensor([[1, -2], [300, 4]], dtype=torch.int16)
    data = b"".join(struct.pack(">h", int(v)) for v in values.flatten())
    got = idx.read_idx(_idx(tmp_path / "i16.idx", (2, 2), data, code=0x0B))
    assert got.dtype == torch.int16 and torch.equal(got, values)
    floats = _idx(tmp_path / "f32.idx", (3,), struct.pack(">3f", 0.5, -1.25, 3.0), code=0x0D)
    assert idx.read_idx(floats).tolist() == [0.5, -1.25, 3.0]


@pytest.mark.parametrize("blob, message", [
    (b"\x00\x00", "truncated header"),
    (b"\x00\x00\x07\x01" + b"\x00" * 8, "bad magic"),             # unknown element type
    (b"\x01\x00\x08\x01" + b"\x00" * 8, "bad magic"),             # non-zero leading bytes
    (b"\x00\x00\x08\x03\x00\x00", "truncated header"),            # 3 dims, 2 header bytes
    (b"\x00\x00\x08\x02\xff\xff\xff\xff\xff\xff\xff\xff" + b"\x00" * 16, "data bytes"),  # huge shape
    (b"\x00\x00\x08\x01\x00\x00\x00\x05" + b"\x00" * 4, "data bytes"),  # one byte short
])
def test_forged_headers_are_clear_errors(tmp_path, blob, message):
    path = tmp_path / "x.idx"
    path.write_bytes(blob)
    with pytest.raises(idx.IdxFormatError, match=message) as e:
        idx.read_idx(path)
    assert str(path) in str(e.value)


def test_hostile_files_never_hang_or_blow_up(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done: list[BaseException] = []
    t = threading.Thread(target=lambda: done.append(pytest.raises(idx.IdxFormatError, idx.read_idx, fifo).value))
    t.start()
    t.join(10)
    assert not t.is_alive() and "not a regular file" in str(done[0])  # refused, not blocked on
    bomb = tmp_path / "bomb.gz"
    bomb.write_bytes(gzip.compress(struct.pack(">HBBI", 0, 8, 1, 4 << 20) + bytes(4 << 20)))
    with pytest.raises(idx.IdxFormatError, match="decompresses to more than"):
        idx.read_idx(bomb, max_bytes=1 << 20)
    big = _idx(tmp_path / "big.idx", (2 << 20,), bytes(2 << 20))
    with pytest.raises(idx.IdxFormatError, match="more than the limit"):
        idx.read_idx(big, max_bytes=1 << 20)
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x02ab")[:-6])
    with pytest.raises(idx.IdxFormatError, match="cannot read"):
        idx.read_idx(broken)


def test_split_checks_shapes_and_labels(tmp_path):
    root = _fake(tmp_path / "r", label=10)
    with pytest.raises(idx.IdxFormatError, match="out of range 0..9"):
        idx.read_split(root, "test")
    assert len(idx.read_split(root, "test", num_classes=None)) == 4
    _idx(root / idx.SPLITS["test"][1], (3,), bytes(3))
    with pytest.raises(idx.IdxFormatError, match="4 images but 3 labels"):
        idx.read_split(root, "test")


def test_mnist_dataset_reads_only_the_given_root(tmp_path):
    problems = "\n".join(DATASETS.check({"name": "mnist"}) + DATASETS.check({"name": "mnist", "subset": True,
                                                                               "root": "x"}))
    assert "missing required parameter 'root'" in problems and "unknown parameter 'subset'" in problems
    train, test = mnist(root=str(SUBSET), batch_size=32, limit=64, eval_limit=100)
    assert len(train) == 2 and len(test.inputs) == 100 and train.inputs.shape[1:] == (1, 28, 28)
    assert abs(float(train.inputs.mean())) < 0.5  # normalized
    assert [p.name for p in mnist_files(SUBSET)] == [f"{n}.gz" for pair in idx.SPLITS.values() for n in pair]
    with pytest.raises(idx.IdxNotFound):
        mnist(root=str(tmp_path))

    root = _fake(tmp_path / "fake" / "MNIST" / "raw", label=1).parent.parent
    first, _ = mnist(root=str(root))
    assert first.targets.tolist() == [1] * 4
    label_file = root / "MNIST" / "raw" / idx.SPLITS["train"][1]
    os.utime(label_file, ns=(1, 1))
    _idx(label_file, (4,), bytes([2]) * 4)  # replaced within the process: read again, not cached
    again, _ = mnist(root=str(root))
    assert again.targets.tolist() == [2] * 4


def test_on_run_start_sees_the_open_seeded_run_before_training(tmp_path):
    seen: list[tuple[str, list[int], float]] = []

    def hook(run) -> None:
        rows = [r["step"] for r in __import__("rustorch_tools").store.runs.iter_metrics(run.dir)]
        seen.append((run.run_id, rows, float(torch.rand(()))))

    cfg = {"name": "hooked", "seed": 5, "device": "cpu", "epochs": 1, "max_steps_per_epoch": 2,
           "model": {"name": "mlp", "in_features": 8, "hidden": [8]}, "optimizer": {"name": "sgd"},
           "data": {"name": "synthetic", "samples": 64, "eval_samples": 16, "batch_size": 16, "shape": [8]}}
    out = run_config(cfg, tmp_path / "runs", on_run_start=hook)
    torch.manual_seed(5)
    assert seen == [(out["run_id"], [], float(torch.rand(())))]  # open, nothing logged, seeded
    with pytest.raises(ConfigError):
        resolve({**cfg, "on_run_start": "x"})  # a callback, never part of the recorded config


def test_vars_may_name_paths_relative_to_the_pipeline_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "p.toml"
    path.write_text('[vars]\ndata = "${pipeline.dir}/../data"\ntag = "${pipeline.name}-x"\n'
                    '[stages.a]\npython = "rustorch_tools.pipeline.builtins:noop"\n'
                    'params = { value = 1 }\n'
                    '[stages.b]\ncommand = ["echo", "${vars.data}", "${vars.tag}"]\n')
    p = parse(path)
    assert p.vars == {"data": f"{tmp_path / 'sub'}/../data", "tag": "p-x"}
    assert parse(path, {"data": "/abs/mnist"}).vars["data"] == "/abs/mnist"
    path.write_text('[vars]\nx = "${pipeline.runs_dir}/y"\n[stages.a]\ncommand = ["true"]\n')
    with pytest.raises(PipelineError, match=r"\[vars\] x: \$\{pipeline.runs_dir\}: a var may reference"):
        parse(path)


def test_train_module_cli_errors_are_exit_2(tmp_path, capsys):
    from rustorch_tools.train.__main__ import main

    assert main(["--config-json", "[1]", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert main(["--config-json", '{"model": {"name": "nope"}}']) == 2
    assert "unknown" in capsys.readouterr().err
    cfg = {"device": "cpu", "model": {"name": "mnist_cnn"}, "optimizer": {"name": "sgd"},
           "data": {"name": "mnist", "root": str(tmp_path / "no-data")}}
    (tmp_path / "c.json").write_text(__import__("json").dumps(cfg))
    assert main([str(tmp_path / "c.json"), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "bad data" in err and str(tmp_path / "no-data" / "MNIST" / "raw") in err
