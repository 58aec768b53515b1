"""Config bundles: deterministic bytes, signatures, hostile entries, safe extraction; and the
signed audit heads (`audit sign` / `audit verify --pubkey`)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

import rustorch_tools
from rustorch_tools.cli import cli
from rustorch_tools.repro import bundle as bundle_mod
from rustorch_tools.repro.record import record_entry_point
from rustorch_tools.store.runstore import RunStore

REPO = Path(__file__).resolve().parent.parent


def _cli(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A small recorded run: two data files, a few metrics."""
    tmp = tmp_path_factory.mktemp("bundle")
    data = [tmp / "a.bin", tmp / "b.bin"]
    for i, p in enumerate(data):
        p.write_bytes(bytes([i]) * 1000)
    with rustorch_tools.start_run(root=tmp / "runs", name="rec", config={"lr": 0.5},
                                  seed=7) as run:
        record_entry_point(run, script=REPO / "examples" / "mnist_rustorch_demo.py",
                           argv=["--epochs", "1", "--runs-dir", "x"], data_files=data,
                           device="cpu")
        for step in range(3):
            run.log_metrics({"loss": 1.0 / (step + 1), "step_seconds": 0.1}, step=step)
    return tmp / "runs" / run.run_id


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("keys")
    assert _cli("bundle", "keygen", tmp / "k").exit_code == 0
    assert _cli("bundle", "keygen", tmp / "other").exit_code == 0
    assert (tmp / "k.key").stat().st_mode & 0o777 == 0o600
    return tmp / "k.key", tmp / "k.pub", tmp / "other.pub"


@pytest.fixture
def signed(tmp_path, recorded, keys) -> Path:
    out = tmp_path / "b.rtb"
    assert _cli("bundle", "create", recorded, "-o", out).exit_code == 0
    assert _cli("bundle", "sign", out, "--key", keys[0]).exit_code == 0
    return out


def test_same_run_gives_same_bytes_and_show_lists_it(tmp_path, recorded):
    a, b = tmp_path / "a.rtb", tmp_path / "b.rtb"
    assert _cli("bundle", "create", recorded, "-o", a).exit_code == 0
    assert _cli("bundle", "create", recorded.name, "--runs-dir", recorded.parent, "-o", b).exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    with tarfile.open(a) as tf:
        members = tf.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(0, 0, 0, "", "", 0o644)}
    shown = _cli("bundle", "show", a)
    assert shown.exit_code == 0
    for text in ("examples/mnist_rustorch_demo.py", "requirements.lock", "seed 7", "metrics.jsonl"):
        assert text in shown.output
    b_ = bundle_mod.load(a)
    rec = b_.record()
    assert rec["runtime"]["device"] == "cpu" and len(rec["data"]) == 2
    assert any(p.startswith("torch==") for p in rec["environment"]["packages"])
    assert rec["code"]["source_sha256"] and b_.json("config.json") == {"lr": 0.5}
    assert _cli("bundle", "create", recorded, "-o", a).exit_code == 2  # no silent overwrite


def test_verify_accepts_the_signed_bundle(signed, keys):
    r = _cli("bundle", "verify", signed, "--pubkey", keys[1])
    assert r.exit_code == 0, r.output
    assert "valid" in r.output


@pytest.mark.parametrize("where", [0, 600, -100, "data"])
def test_one_byte_change_anywhere_is_refused(signed, keys, where):
    data = bytearray(signed.read_bytes())
    pos = data.index(b'"lr"') if where == "data" else where
    data[pos] ^= 0x01
    signed.write_bytes(bytes(data))
    r = _cli("bundle", "verify", signed, "--pubkey", keys[1])
    assert r.exit_code == 1 and "modified after signing" in r.output


def test_wrong_key_missing_signature_and_bad_key_file(signed, keys, tmp_path):
    r = _cli("bundle", "verify", signed, "--pubkey", keys[2])
    assert r.exit_code == 1 and "not by the given public key" in r.output
    sig = json.loads(Path(f"{signed}.sig").read_text())
    sig["key_id"] = json.loads(Path(f"{signed}.sig").read_text())["key_id"]
    sig["signature"] = sig["signature"][:-4] + ("AAA=" if not sig["signature"].endswith("AAA=") else "BBB=")
    Path(f"{signed}.sig").write_text(json.dumps(sig))
    r = _cli("bundle", "verify", signed, "--pubkey", keys[1])
    assert r.exit_code == 1 and "does not verify" in r.output
    Path(f"{signed}.sig").unlink()
    r = _cli("bundle", "verify", signed, "--pubkey", keys[1])
    assert r.exit_code == 1 and "no signature" in r.output
    junk = tmp_path / "junk.pub"
    junk.write_text("not a key")
    assert _cli("bundle", "verify", signed, "--pubkey", junk).exit_code == 2
    assert _cli("bundle", "verify", signed).exit_code == 2  # --pubkey is required


def _tar(entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for e in entries:
            if isinstance(e, tarfile.TarInfo):
                tf.addfile(e)
            else:
                info = tarfile.TarInfo(e[0])
                info.size = len(e[1])
                tf.addfile(info, io.BytesIO(e[1]))
    return out.getvalue()


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize("entry, message", [
    (("../evil", b"x"), "'..'"),
    (("/etc/evil", b"x"), "absolute"),
    (("a/./b", b"x"), "'.'"),
    (_link("config.json", "/etc/passwd"), "is a link"),
    (_link("hard", "bundle.json", tarfile.LNKTYPE), "is a link"),
    (("big", b"x" * 2048), "over the"),
    (("unlisted.json", b"{}"), "not listed"),
])
def test_hostile_entries_are_refused(tmp_path, signed, keys, monkeypatch, entry, message):
    good = bundle_mod.load(signed)
    if message == "over the":
        monkeypatch.setattr(bundle_mod, "MAX_ENTRY_BYTES", 2000)
    items = [(n, d) for n, d in good.entries.items()] + [("bundle.json", bundle_mod.canonical(good.index))]
    bad = tmp_path / "bad.rtb"
    bad.write_bytes(_tar([entry, *items]))
    assert _cli("bundle", "sign", bad, "--key", keys[0]).exit_code == 1  # never signed
    for args in (("show", bad), ("extract", bad, "-C", tmp_path / "out")):
        r = _cli("bundle", *args)
        assert r.exit_code == 1 and message in r.output, r.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("name, body", [
    ("entry.json", b"[]"),
    ("entry.json", b'{"kind": "script", "script": 3}'),
    ("data.json", b'[{"path": "/dev/zero"}]'),
    ("runtime.json", b'{"threads": -1}'),
    ("metrics.jsonl", b'{"step": "x"}\n'),
])
def test_malformed_records_are_refused(tmp_path, signed, name, body):
    good = bundle_mod.load(signed)
    entries = {**good.entries, name: body}
    meta = {k: v for k, v in good.index.items() if k not in ("files", "format", "version")}
    bad = tmp_path / "bad.rtb"
    bad.write_bytes(bundle_mod.pack(entries, meta))
    cmd = ("replay", bad, "--into", tmp_path / "r") if name == "metrics.jsonl" else ("bundle", "show", bad)
    r = _cli(*cmd)
    assert r.exit_code == (2 if cmd[0] == "replay" else 1) and "invalid" in r.output, r.output
    assert not (tmp_path / "r").exists()


def test_extract_stays_inside_its_target(tmp_path, signed):
    out = tmp_path / "out"
    assert _cli("bundle", "extract", signed, "-C", out).exit_code == 0
    assert json.loads((out / "config.json").read_text()) == {"lr": 0.5}
    assert _cli("bundle", "extract", signed, "-C", out).exit_code == 1  # never overwrites
    pipe = tmp_path / "p.json"
    pipe.write_text('{"steps": 3}')
    pb = tmp_path / "p.rtb"
    assert _cli("bundle", "create", pipe, "-o", pb).exit_code == 0
    trap = tmp_path / "trap"
    (trap / "outside").mkdir(parents=True)
    (trap / "pipeline").symlink_to(trap / "outside")
    r = _cli("bundle", "extract", pb, "-C", trap)
    assert r.exit_code == 1 and "not a folder" in r.output
    assert not any((trap / "outside").iterdir())


@pytest.fixture
def audited(tmp_path, keys) -> Path:
    runs = tmp_path / "runs"
    runs.mkdir()
    for i in range(3):
        RunStore(runs).audit_append("validate", {"i": i})
    r = _cli("audit", "sign", runs, "--key", keys[0])
    assert r.exit_code == 0, r.output
    RunStore(runs).audit_append("validate", {"i": 9})
    return runs


def test_signed_head_verifies(audited, keys):
    r = _cli("audit", "verify", audited, "--pubkey", keys[1])
    assert r.exit_code == 0, r.output
    r = _cli("audit", "verify", audited, "--pubkey", keys[2])
    assert r.exit_code == 1 and "signed by key" in r.output


def test_truncated_chain_is_detected(audited, keys):
    log = audited / ".audit" / "log.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:2]))
    # a careful attacker also rewrites head.json so the plain chain check passes
    last = json.loads(lines[1])
    (audited / ".audit" / "head.json").write_text(json.dumps({"seq": last["seq"], "hash": last["hash"]}))
    assert _cli("audit", "verify", audited).exit_code == 0
    r = _cli("audit", "verify", audited, "--pubkey", keys[1])
    assert r.exit_code == 1 and "truncated" in r.output


def test_wholly_forged_chain_is_detected(audited, keys, tmp_path):
    forged = tmp_path / "forged"
    forged.mkdir()
    for i in range(6):
        RunStore(forged).audit_append("validate", {"i": -i})
    for name in ("log.jsonl", "head.json"):
        (audited / ".audit" / name).write_bytes((forged / ".audit" / name).read_bytes())
    assert _cli("audit", "verify", audited).exit_code == 0
    r = _cli("audit", "verify", audited, "--pubkey", keys[1])
    assert r.exit_code == 1 and "forged" in r.output
    (audited / ".audit" / "signed-heads.jsonl").unlink()
    r = _cli("audit", "verify", audited, "--pubkey", keys[1])
    assert r.exit_code == 1 and "no signed head" in r.output
