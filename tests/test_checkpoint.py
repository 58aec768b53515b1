"""rustorch_tools.checkpoint: format, integrity, safety, rotation, versions."""

import json
import math
import os
import pickle
import random
import struct

import numpy as np
import pytest
import torch

import rustorch_tools
from rustorch_tools import checkpoint
from rustorch_tools.errors import (
    CheckpointNotFoundError,
    CorruptCheckpointError,
    NotSerializableError,
    UnsupportedCheckpointVersion,
)
from rustorch_tools.store import layout, manifest, runs


def make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def trained():
    model = make_model()
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, 2, gamma=0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    for _ in range(3):
        loss = model(torch.randn(4, 6)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model, opt, sched, scaler


def assert_same(a, b, path="root"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, path
        assert torch.equal(a.cpu().view(-1).view(torch.uint8) if a.numel() else a.cpu(),
                           b.cpu().reshape(-1).view(torch.uint8) if b.numel() else b.cpu()), path
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), path
    elif isinstance(a, dict):
        assert type(b) in (dict, type(a)) and list(a) == list(b), path
        for k in a:
            assert_same(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}/{i}")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b and type(a) is type(b), path


def test_roundtrip_every_state_and_odd_tensors(tmp_path):
    model, opt, sched, scaler = trained()
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    extra = {
        "bf16": torch.randn(5).bfloat16(), "f16": torch.randn(3).half(), "i64": torch.tensor([2**62]),
        "bool": torch.tensor([True, False]), "u32": torch.tensor([7], dtype=torch.uint32),
        "c128": torch.randn(3, dtype=torch.complex128), "empty": torch.empty(0, 3), "scalar": torch.tensor(3.5),
        "noncontig": base.t(), "slice": base[1:3, ::2], "tied": (base, base),
        "np": np.arange(5, dtype=np.uint16).reshape(5, 1), "npscalar": np.float32(1.5),
        "nums": [1, 2.5, float("nan"), float("-inf"), None, True, "s"], "int_keys": {1: "a", (2, 3): "b"},
        "dollar": {"$tensor": "not a ref"}, "bytes": b"\x00\xff", "dtype": torch.float16,
        "device": torch.device("cpu"), "size": torch.Size([2, 3]),
    }
    saved = checkpoint.save_checkpoint(tmp_path / "one.safetensors", model=model, optimizer=opt,
                                       scheduler=sched, scaler=scaler, step=3, epoch=1, extra=extra)
    assert saved.sha256 == manifest.sha256_file(saved.path) and saved.size == saved.path.stat().st_size
    ck = checkpoint.load_checkpoint(saved.path, restore_rng=False)
    assert (ck.format_version, ck.step, ck.epoch) == (2, 3, 1)
    assert_same(model.state_dict(), ck.model)
    assert_same(opt.state_dict(), ck.optimizer)
    assert_same(sched.state_dict(), ck.scheduler)
    assert_same(scaler.state_dict(), ck.scaler)
    assert ck.model._metadata == model.state_dict()._metadata
    got = ck.extra
    for key in ("bf16", "f16", "i64", "bool", "u32", "c128", "empty", "scalar", "noncontig", "slice"):
        assert_same(extra[key].contiguous(), got[key], key)
    assert_same(extra["np"], got["np"])
    assert got["npscalar"] == 1.5 and got["tied"][0] is got["tied"][1]
    assert_same(extra["nums"], got["nums"])
    assert got["int_keys"] == {1: "a", (2, 3): "b"} and got["dollar"] == {"$tensor": "not a ref"}
    assert got["bytes"] == b"\x00\xff" and got["dtype"] is torch.float16
    assert got["device"] == torch.device("cpu") and got["size"] == (2, 3)
    # Loading into fresh objects gives identical state.
    m2 = make_model()
    o2 = torch.optim.AdamW(m2.parameters(), lr=0.5)
    checkpoint.load_checkpoint(saved.path, model=m2, optimizer=o2, restore_rng=False)
    assert_same(model.state_dict(), m2.state_dict())
    assert_same(opt.state_dict(), o2.state_dict())


def test_file_is_standard_safetensors(tmp_path):
    safetensors = pytest.importorskip("safetensors")
    model = make_model()
    saved = checkpoint.save_checkpoint(tmp_path / "a.safetensors", model=model, step=1)
    with safetensors.safe_open(str(saved.path), framework="pt") as fh:
        meta = json.loads(fh.metadata()["rustorch_checkpoint"])
        assert meta["format_version"] == 2 and meta["step"] == 1
        assert torch.equal(fh.get_tensor("model/0.weight"), model[0].weight.detach())


def test_unstorable_objects_are_refused(tmp_path):
    with pytest.raises(NotSerializableError, match="extra/fn"):
        checkpoint.save_checkpoint(tmp_path / "x.safetensors", extra={"fn": print})
    assert not list(tmp_path.iterdir())


def test_every_corruption_is_detected(tmp_path):
    saved = checkpoint.save_checkpoint(tmp_path / "c.safetensors", model=make_model(), step=1)
    data = saved.path.read_bytes()
    rng = random.Random(0)
    positions = [0, 3, 9, 40, len(data) // 2, len(data) - 33, len(data) - 1] + rng.sample(range(len(data)), 20)
    for pos in positions:
        bad = bytearray(data)
        bad[pos] ^= 0x20
        saved.path.write_bytes(bytes(bad))
        with pytest.raises(CorruptCheckpointError) as info:
            checkpoint.load_checkpoint(saved.path)
        assert str(saved.path) in str(info.value)
    bad = bytearray(data)
    bad[len(data) // 2] ^= 1
    saved.path.write_bytes(bytes(bad))
    with pytest.raises(CorruptCheckpointError, match="BLAKE3 .expected blake3 [0-9a-f]{64}, got [0-9a-f]{64}"):
        checkpoint.load_checkpoint(saved.path)
    with pytest.raises(CorruptCheckpointError, match="SHA-256 .expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}"):
        checkpoint.load_checkpoint(saved.path, verify="full")
    for cut in (0, 5, 100, len(data) - 1):
        saved.path.write_bytes(data[:cut])
        with pytest.raises(CorruptCheckpointError):
            checkpoint.load_checkpoint(saved.path)


class Evil:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = "/nonexistent"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_pickle_is_refused(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setitem(globals(), "MARKER", str(marker))
    raw = tmp_path / "ckpt-0000000001.pt"
    raw.write_bytes(pickle.dumps({"model": Evil()}))
    zipped = tmp_path / "ckpt-0000000002.pt"
    torch.save({"model": {"w": torch.ones(1)}, "x": Evil()}, zipped)
    for path in (raw, zipped):
        with pytest.raises(CorruptCheckpointError, match="refused to load"):
            checkpoint.load_checkpoint(path)
    assert not marker.exists()


def test_legacy_format_0_is_migrated(tmp_path):
    model = make_model()
    legacy = tmp_path / "old.pt"
    torch.save({"model": model.state_dict(), "step": 7, "epoch": 2, "extra": {"note": "v0"}}, legacy)
    m2 = make_model()
    torch.nn.init.zeros_(m2[0].weight)
    ck = checkpoint.load_checkpoint(legacy, model=m2)
    assert (ck.format_version, ck.migrated_from, ck.step, ck.epoch) == (0, 0, 7, 2)
    assert torch.equal(m2[0].weight, model[0].weight) and ck.extra == {"note": "v0"}


def test_future_format_is_refused(tmp_path, monkeypatch):
    saved = checkpoint.save_checkpoint(tmp_path / "f.safetensors", model=make_model())
    monkeypatch.setattr(checkpoint.fileformat, "FORMAT_VERSION", 1)  # as an older reader
    with pytest.raises(UnsupportedCheckpointVersion, match="format_version 2 is newer"):
        checkpoint.load_checkpoint(saved.path)
    legacy = tmp_path / "f.pt"
    torch.save({"format_version": 5, "model": {}}, legacy)
    with pytest.raises(UnsupportedCheckpointVersion):
        checkpoint.load_checkpoint(legacy)


def test_rotation_latest_manifest_and_events(tmp_path):
    model = make_model()
    with rustorch_tools.start_run(root=tmp_path, name="rot") as run:
        for step in range(0, 50, 10):
            with torch.no_grad():
                model[0].weight.fill_(step)
            run.save_checkpoint(model=model, step=step, keep_last=2)
    ckdir = run.dir / layout.CHECKPOINTS
    assert sorted(p.name for p in ckdir.iterdir()) == [
        "ckpt-0000000030.safetensors", "ckpt-0000000040.safetensors", "latest"]
    pointer = json.loads((ckdir / "latest").read_text())
    assert pointer["file"] == "ckpt-0000000040.safetensors" and pointer["step"] == 40
    assert set(manifest.read_manifest(run.dir)["files"]) == {
        "checkpoints/ckpt-0000000030.safetensors", "checkpoints/ckpt-0000000040.safetensors"}
    assert manifest.verify(run.dir) == []
    events = [e for e in runs.iter_events(run.dir) if e["event"] == "checkpointed"]
    assert [e["detail"]["step"] for e in events] == [0, 10, 20, 30, 40]
    assert events[-1]["detail"]["sha256"] == pointer["sha256"]
    m2 = make_model()
    ck = checkpoint.load_checkpoint(run.dir, model=m2)
    assert ck.step == 40 and bool((m2[0].weight == 40).all())
    assert checkpoint.load_checkpoint(ckdir).step == 40


def test_damaged_latest_falls_back_to_newest_intact(tmp_path):
    model = make_model()
    for step in (1, 2, 3):
        checkpoint.save_checkpoint(tmp_path, model=model, step=step, keep_last=None)
    newest = tmp_path / "ckpt-0000000003.safetensors"
    data = bytearray(newest.read_bytes())
    data[-100] ^= 0xFF
    newest.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="newest intact checkpoint ckpt-0000000002"):
        assert checkpoint.load_checkpoint(tmp_path).step == 2
    (tmp_path / "latest").write_text("{garbage")
    with pytest.warns(UserWarning):
        assert checkpoint.load_checkpoint(tmp_path).step == 2
    with pytest.raises(CorruptCheckpointError):  # an explicit file is never replaced silently
        checkpoint.load_checkpoint(newest)
    with pytest.raises(CheckpointNotFoundError):
        checkpoint.load_checkpoint(tmp_path / "empty-dir")


def test_rng_states_are_restored():
    checkpoint_state = checkpoint.capture_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(2))
    checkpoint.restore_rng_state(checkpoint_state)
    second = (random.random(), np.random.rand(), torch.rand(2))
    assert first[0] == second[0] and first[1] == second[1] and torch.equal(first[2], second[2])


def test_rng_roundtrip_through_file(tmp_path):
    saved = checkpoint.save_checkpoint(tmp_path / "r.safetensors", step=0)
    expect = (random.random(), np.random.rand(), torch.rand(3))
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    checkpoint.load_checkpoint(saved.path)
    got = (random.random(), np.random.rand(), torch.rand(3))
    assert expect[0] == got[0] and expect[1] == got[1] and torch.equal(expect[2], got[2])


def test_header_layout_is_aligned(tmp_path):
    extra = {"a": torch.ones(3, dtype=torch.uint8), "b": torch.ones(5, dtype=torch.float64),
             "c": torch.ones(7, dtype=torch.float16), "d": torch.ones(3, dtype=torch.float32)}
    saved = checkpoint.save_checkpoint(tmp_path / "al.safetensors", extra=extra, rng=False)
    data = saved.path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    assert (8 + n) % 8 == 0
    header = json.loads(data[8 : 8 + n])
    for key, info in header.items():
        if key != "__metadata__":
            size = {"U8": 1, "F64": 8, "F16": 2, "F32": 4}[info["dtype"]]
            assert info["data_offsets"][0] % size == 0, key
    data_len = len(data) - 8 - n  # format 2 ends with the SHA-256 tail, then the BLAKE3 tail
    assert header["__rustorch_sha256__"]["data_offsets"] == [data_len - 64, data_len - 32]
    assert header["__rustorch_blake3__"]["data_offsets"] == [data_len - 32, data_len]


def _device_available() -> bool:
    try:
        import rustorch_device  # noqa: F401

        torch.empty(1, device="rustorch")
        return True
    except Exception:
        return False


@pytest.mark.skipif(not _device_available(), reason="rustorch device not built in this checkout")
def test_map_location_rustorch(tmp_path):
    model = make_model()
    saved = checkpoint.save_checkpoint(tmp_path / "m.safetensors", model=model)
    ck = checkpoint.load_checkpoint(saved.path, map_location="rustorch", restore_rng=False)
    assert all(t.device.type == "rustorch" for t in ck.model.values())
    assert torch.equal(ck.model["0.weight"].cpu(), model[0].weight.detach())
    dev_model = make_model().to("rustorch")
    saved = checkpoint.save_checkpoint(tmp_path / "d.safetensors", model=dev_model)
    back = checkpoint.load_checkpoint(saved.path, restore_rng=False)
    assert back.model["0.weight"].device.type == "rustorch"
    cpu = checkpoint.load_checkpoint(saved.path, map_location="cpu", restore_rng=False)
    assert cpu.model["0.weight"].device.type == "cpu"


def test_header_length_starting_with_pickle_byte_is_still_safetensors(tmp_path):
    # A header length whose low byte is 0x80 makes the file start like a pickle.
    for pad in range(0, 300):
        saved = checkpoint.save_checkpoint(tmp_path / "p.safetensors", extra={"pad": "x" * pad}, rng=False)
        if saved.path.read_bytes()[:1] == b"\x80":
            break
    else:
        pytest.fail("no padding produced a header length with low byte 0x80")
    assert checkpoint.load_checkpoint(saved.path).extra == {"pad": "x" * pad}
