"""Checkpoint digests (format 2): BLAKE3 beside SHA-256 in the file, in manifest.json and in
`latest`; loading checks BLAKE3 (or SHA-256 where only that was recorded), `verify="full"`
checks both; format 1 files and runs that recorded only SHA-256 still load."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import blake3
import pytest
import torch
from support.ckpt_forge import reseal

import rustorch_tools
from rustorch_tools import checkpoint
from rustorch_tools.errors import CorruptCheckpointError
from rustorch_tools.store import manifest, runs

FORMAT1 = Path(__file__).parent / "support" / "ckpt_format1.safetensors"  # written by format-1 code


def _model(seed: int = 0) -> torch.nn.Linear:
    torch.manual_seed(seed)
    return torch.nn.Linear(4, 3)


def _flip(offset_from_end: int):
    def mutate(body: bytearray) -> None:
        body[len(body) - offset_from_end] ^= 0x01
    return mutate


def _b3(path: Path) -> str:
    return blake3.blake3(path.read_bytes()).hexdigest()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_save_records_blake3_in_file_manifest_latest_and_event(tmp_path):
    with rustorch_tools.start_run(tmp_path, name="d") as run:
        saved = run.save_checkpoint(model=_model(), step=1)
    assert (saved.sha256, saved.blake3) == (_sha(saved.path), _b3(saved.path))
    entry = manifest.read_manifest(run.dir)["files"]["checkpoints/" + saved.path.name]
    pointer = json.loads((saved.path.parent / "latest").read_text())
    event = [e for e in runs.iter_events(run.dir) if e["event"] == "checkpointed"][-1]
    for record in (entry, pointer, event["detail"]):
        assert (record["sha256"], record["blake3"]) == (saved.sha256, saved.blake3)
    data = saved.path.read_bytes()
    assert data[-32:] == blake3.blake3(data[:-32]).digest()  # BLAKE3 last: covers every byte
    assert data[-64:-32] == hashlib.sha256(data[:-64]).digest()
    ck = checkpoint.load_checkpoint(run.dir, model=_model(1))
    assert ck.verified == ("blake3",) and ck.file_blake3 == saved.blake3 and ck.file_sha256 is None
    full = checkpoint.load_checkpoint(run.dir, verify="full")
    assert full.verified == ("sha256", "blake3") and full.file_sha256 == saved.sha256


def test_large_state_hashed_in_threads_while_writing(tmp_path):
    state = {"w": torch.arange(5 << 20, dtype=torch.float32)}  # 20 MB: the threaded path
    saved = checkpoint.save_checkpoint(tmp_path / "big.safetensors", model=state, rng=False)
    assert (saved.sha256, saved.blake3) == (_sha(saved.path), _b3(saved.path))
    ck = checkpoint.load_checkpoint(saved.path, verify="full", restore_rng=False)
    assert torch.equal(ck.model["w"], state["w"])


def test_blake3_mismatch_is_refused(tmp_path):
    saved = checkpoint.save_checkpoint(tmp_path / "c.safetensors", model=_model(), rng=False)
    # a tensor byte changed and the SHA-256 tail recomputed, the BLAKE3 tail left as it was
    reseal(saved.path, mutate_body=_flip(5), recompute=("sha256",))
    for verify in ("fast", "full"):
        with pytest.raises(CorruptCheckpointError, match="does not match its BLAKE3 .expected blake3"):
            checkpoint.load_checkpoint(saved.path, verify=verify)


def test_full_verify_also_checks_sha256(tmp_path):
    saved = checkpoint.save_checkpoint(tmp_path / "c.safetensors", model=_model(), rng=False)
    # a forger who recomputes BLAKE3 only: the file's own digests are no defence against
    # forgery (that is the run's record), but "full" still sees the stale SHA-256
    reseal(saved.path, mutate_body=_flip(5), recompute=("blake3",))
    assert checkpoint.load_checkpoint(saved.path, restore_rng=False).verified == ("blake3",)
    with pytest.raises(CorruptCheckpointError, match="does not match its SHA-256 .expected sha256"):
        checkpoint.load_checkpoint(saved.path, verify="full")
    with pytest.raises(ValueError, match="verify must be one of"):
        checkpoint.load_checkpoint(saved.path, verify="none")


def test_format1_checkpoint_without_blake3_loads_with_sha256(tmp_path):
    path = tmp_path / "old.safetensors"
    shutil.copyfile(FORMAT1, path)
    model = _model(1)
    ck = checkpoint.load_checkpoint(path, model=model)
    assert (ck.format_version, ck.step, ck.epoch, ck.extra) == (1, 5, 1, {"note": "format 1"})
    assert ck.verified == ("sha256",) and ck.blake3 is None and ck.file_sha256 == _sha(path)
    assert torch.equal(model.weight, _model(0).weight)
    assert checkpoint.load_checkpoint(path, verify="full").verified == ("sha256",)
    data = bytearray(path.read_bytes())
    data[-40] ^= 0x01  # in the last tensor
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match="does not match its SHA-256"):
        checkpoint.load_checkpoint(path)


def _run_with_format1_checkpoint(root: Path):
    """A run as format-1 code left it: the file, and manifest/latest with SHA-256 only."""
    with rustorch_tools.start_run(root, name="old") as run:
        saved = run.save_checkpoint(model=_model(3), step=5)
    shutil.copyfile(FORMAT1, saved.path)
    rel = "checkpoints/" + saved.path.name
    doc = manifest.read_manifest(run.dir)
    doc["files"][rel] = {"sha256": _sha(saved.path), "size": saved.path.stat().st_size,
                         "added_at": 1.0, "verified": True}
    manifest.write_manifest(run.dir, doc)
    pointer_path = saved.path.parent / "latest"
    pointer = json.loads(pointer_path.read_text())
    del pointer["blake3"]
    pointer["sha256"] = doc["files"][rel]["sha256"]
    pointer_path.write_text(json.dumps(pointer))
    return run, saved


def test_run_that_recorded_only_sha256_still_loads_and_is_checked(tmp_path):
    run, saved = _run_with_format1_checkpoint(tmp_path)
    assert manifest.verify(run.dir) == []
    model = _model(1)
    ck = checkpoint.load_checkpoint(run.dir, model=model)
    assert ck.format_version == 1 and ck.verified == ("sha256",)
    assert torch.equal(model.weight, _model(0).weight)
    doc = manifest.read_manifest(run.dir)
    doc["files"]["checkpoints/" + saved.path.name]["sha256"] = "0" * 64
    manifest.write_manifest(run.dir, doc)
    with pytest.raises(CorruptCheckpointError, match="recorded for it .manifest.json / latest. .expected sha256 0{64}"):
        checkpoint.load_checkpoint(saved.path)


def test_manifest_or_latest_digest_mismatch_is_refused(tmp_path):
    with rustorch_tools.start_run(tmp_path, name="m") as run:
        run.save_checkpoint(model=_model(0), step=1)
        saved = run.save_checkpoint(model=_model(1), step=2)
    rel = "checkpoints/" + saved.path.name
    good = manifest.read_manifest(run.dir)

    def with_entry(**change):
        doc = json.loads(json.dumps(good))
        doc["files"][rel].update(change)
        manifest.write_manifest(run.dir, doc)

    with_entry(blake3="0" * 64)  # the file is intact; the run recorded another one
    with pytest.raises(CorruptCheckpointError, match="recorded for it .manifest.json / latest. .expected blake3 0{64}"):
        checkpoint.load_checkpoint(saved.path, verify="fast")
    with pytest.warns(UserWarning, match="newest intact checkpoint ckpt-0000000001"):
        assert checkpoint.load_checkpoint(run.dir).step == 1
    with_entry(sha256="0" * 64)  # BLAKE3 agrees; "full" checks the recorded SHA-256 too
    assert checkpoint.load_checkpoint(saved.path).step == 2
    with pytest.raises(CorruptCheckpointError, match="expected sha256 0{64}"):
        checkpoint.load_checkpoint(saved.path, verify="full")
    with_entry()
    pointer_path = saved.path.parent / "latest"
    pointer = json.loads(pointer_path.read_text())
    pointer_path.write_text(json.dumps({**pointer, "blake3": "1" * 64}))
    with pytest.warns(UserWarning, match="latest records another blake3"):
        assert checkpoint.load_checkpoint(run.dir).step == 1


@pytest.mark.parametrize("forgery", ["no_blake3_in_format2", "blake3_in_format1",
                                     "blake3_offsets_swapped", "blake3_shape"])
def test_forged_digest_entries_raise_corrupt_checkpoint_error(tmp_path, forgery):
    saved = checkpoint.save_checkpoint(tmp_path / "c.safetensors", model=_model(), rng=False)

    def mutate(h):
        meta = json.loads(h["__metadata__"]["rustorch_checkpoint"])
        if forgery == "no_blake3_in_format2":
            h["__rustorch_blake3__"] = None  # a null entry, as a downgrade forger might try
        elif forgery == "blake3_in_format1":
            meta["format_version"] = 1
        elif forgery == "blake3_offsets_swapped":
            b3, sha = h["__rustorch_blake3__"], h["__rustorch_sha256__"]
            b3["data_offsets"], sha["data_offsets"] = sha["data_offsets"], b3["data_offsets"]
        else:
            h["__rustorch_blake3__"]["shape"] = [4, 8]
        h["__metadata__"]["rustorch_checkpoint"] = json.dumps(meta)

    reseal(saved.path, mutate, place_tails=forgery != "blake3_offsets_swapped")
    for verify in ("fast", "full"):
        with pytest.raises(CorruptCheckpointError) as info:
            checkpoint.load_checkpoint(saved.path, verify=verify)
        assert "does not match" not in str(info.value)


def test_plain_folder_holds_latest_to_its_recorded_digest(tmp_path):
    checkpoint.save_checkpoint(tmp_path, model=_model(0), step=1, keep_last=None)
    checkpoint.save_checkpoint(tmp_path, model=_model(1), step=2, keep_last=None)
    other = checkpoint.save_checkpoint(tmp_path / "x" / "other.safetensors", model=_model(7), step=2)
    shutil.copyfile(other.path, tmp_path / "ckpt-0000000002.safetensors")  # valid, but not the one saved
    with pytest.warns(UserWarning, match="newest intact checkpoint ckpt-0000000001"):
        assert checkpoint.load_checkpoint(tmp_path).step == 1
