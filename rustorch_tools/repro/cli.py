"""CLI commands of rustorch_tools.repro: the `bundle` group and `replay`.

Exit codes: `bundle verify` 0 valid, 1 invalid, 2 usage; `replay` 0 bit-identical, 1 diverged,
2 replay impossible (environment differs, invalid bundle or record) or usage; other commands 0 done, 1 refused (an
invalid bundle), 2 usage or I/O error.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..errors import InvalidNameError, RunNotFoundError, RustorchToolsError
from ..store import layout
from ..store.runstore import find_run
from ..store.select import select_run
from . import bundle as bundle_mod
from . import signing

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def _errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Key/usage problems exit 2, invalid bundles or signatures exit 1, with one line."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (signing.SignatureError, bundle_mod.BundleError) as e:
            click.echo(f"invalid: {e}", err=True)
            sys.exit(EXIT_INVALID)
        except (OSError, RustorchToolsError) as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(EXIT_USAGE)

    return wrapper


def locate_run(arg: str, runs_dir: Path | None) -> Path:
    """A run folder given as a path, or a run id, unique id prefix or run name under
    `runs_dir` (rustorch_tools.store.select)."""
    path = Path(arg)
    if runs_dir is not None and "/" not in arg:
        try:
            return select_run(runs_dir, arg)
        except (InvalidNameError, RunNotFoundError) as exc:
            if not (path.is_dir() and find_run(path) is not None):
                raise click.UsageError(str(exc)) from None
    if path.is_dir() and find_run(path) is not None and path.name != layout.CHECKPOINTS:
        return path
    raise click.UsageError(f"{arg!r} is not a run folder"
                           + ("" if runs_dir else " (give RUNS_DIR to look up run ids)"))


def _emit(as_json: bool, doc: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True) if as_json else text)


RUNS_DIR_OPT = click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path),
                            default=None, help="RUNS_DIR in which to look up a run id.")
JSON_OPT = click.option("--json", "as_json", is_flag=True,
                        help="Print the outcome as one JSON object.")


@click.group("bundle")
def bundle_group() -> None:
    """Reproducible config bundles (.rtb) and their Ed25519 signatures."""


@bundle_group.command("create")
@click.argument("source")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The bundle file to write (NAME.rtb).")
@RUNS_DIR_OPT
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@JSON_OPT
@_errors
def create_cmd(source: str, output: Path, runs_dir: Path | None, force: bool, as_json: bool) -> None:
    """Bundle a recorded run (folder, or id / id prefix / name in RUNS_DIR) or a pipeline file
    (.json/.toml/...) into OUTPUT.

    The same inputs give the same bytes. Exit 0 written, 1 the run cannot be bundled (it
    recorded no replay.json), 2 usage or I/O error.
    """
    if output.exists() and not force:
        raise click.UsageError(f"{output} exists (pass --force to replace it)")
    path = Path(source)
    if path.is_file():
        data = bundle_mod.from_pipeline(path)
    else:
        data = bundle_mod.from_run(locate_run(source, runs_dir))
    bundle_mod.write(output, data)
    b = bundle_mod.parse(data)
    digest = hashlib.sha256(data).hexdigest()
    _emit(as_json, {"output": str(output), "bytes": len(data), "entries": len(b.entries) + 1,
                    "sha256": digest},
          f"wrote {output} ({len(data)} bytes, {len(b.entries) + 1} entries, sha256 {digest})")


@bundle_group.command("keygen")
@click.argument("prefix", type=click.Path(dir_okay=False, path_type=Path))
@JSON_OPT
@_errors
def keygen_cmd(prefix: Path, as_json: bool) -> None:
    """Write a new Ed25519 key pair: PREFIX.key (private, mode 0600) and PREFIX.pub.

    Exit 0 written, 2 usage or I/O error (a key file exists already).
    """
    priv, pub = signing.keygen(prefix)
    kid = signing.key_id(signing.load_public(pub))
    _emit(as_json, {"private_key": str(priv), "public_key": str(pub), "key_id": kid},
          f"private key {priv} (keep it secret), public key {pub}, key id {kid}")


@bundle_group.command("sign")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Ed25519 private key (PEM, from `bundle keygen`).")
@JSON_OPT
@_errors
def sign_cmd(bundle: Path, key: Path, as_json: bool) -> None:
    """Write the detached signature BUNDLE.sig (the bundle is checked first).

    Exit 0 signed, 1 the bundle is invalid (not signed), 2 usage or I/O error.
    """
    private = signing.load_private(key)
    data = bundle_mod.read_bytes_limited(bundle)
    bundle_mod.parse(data)  # never sign an unsafe or malformed bundle
    doc = signing.sign_bytes(data, private)
    out = signing.signature_path(bundle)
    from ..store import atomic

    atomic.write_output(out, json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n")
    _emit(as_json, {"bundle": str(bundle), "signature": str(out), "key_id": doc["key_id"]},
          f"signed {bundle} with key {doc['key_id']}: {out}")


@bundle_group.command("verify")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pubkey", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Ed25519 public key (PEM) the bundle must be signed with.")
@click.option("--signature", "sig_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Signature file (default: BUNDLE.sig).")
@JSON_OPT
@_errors
def verify_cmd(bundle: Path, pubkey: Path, sig_path: Path | None, as_json: bool) -> None:
    """Check the signature and every entry.

    Exit 0 valid, 1 invalid (signature or an entry; the reason on stderr), 2 usage or I/O
    error.
    """
    public = signing.load_public(pubkey)
    sig_doc = signing.read_signature(sig_path or signing.signature_path(bundle))
    data = bundle_mod.read_bytes_limited(bundle)
    signing.verify_bytes(data, sig_doc, public)
    b = bundle_mod.parse(data)
    _emit(as_json, {"bundle": str(bundle), "valid": True, "key_id": sig_doc["key_id"],
                    "entries": len(b.entries) + 1},
          f"valid: {bundle} signed by key {sig_doc['key_id']}, {len(b.entries) + 1} entries intact")


@bundle_group.command("show")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print bundle.json.")
@_errors
def show_cmd(bundle: Path, as_json: bool) -> None:
    """List the entries and what the bundle reproduces.

    Exit 0 valid, 1 the bundle is invalid, 2 usage or I/O error.
    """
    b = bundle_mod.load(bundle)
    if as_json:
        click.echo(json.dumps(b.index, indent=2, sort_keys=True))
        return
    rec = b.record()
    env, code, entry = rec["environment"], rec["code"], rec["entry"]
    what = entry.get("script") or entry.get("module") or entry.get("file")
    click.echo(f"{b.index.get('kind')} bundle: {b.index.get('run_id') or b.index.get('name')}")
    click.echo(f"  entry point: {entry.get('kind')} {what} {' '.join(entry.get('argv', []))}")
    click.echo(f"  code: git {code.get('git_commit')} (dirty: {code.get('git_dirty')}), "
               f"source sha256 {str(code.get('source_sha256'))[:16]}…")
    click.echo(f"  python {env.get('python')}, torch {env.get('torch')}, rustorch "
               f"{env.get('rustorch')}, {len(env.get('packages', []))} packages locked")
    rt = rec["runtime"]
    click.echo(f"  seed {rec.get('seed')}, device {rt.get('device')}, threads {rt.get('threads')}"
               f", {len(rec['data'])} data files")
    for name, meta in sorted(b.index["files"].items()):
        click.echo(f"  {meta['size']:>10}  {meta['sha256'][:16]}…  {name}")


@bundle_group.command("extract")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-C", "--target", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to extract into (created; existing files are never replaced).")
@JSON_OPT
@_errors
def extract_cmd(bundle: Path, target: Path, as_json: bool) -> None:
    """Write the entries under TARGET, never outside it (the bundle is checked first).

    Exit 0 extracted, 1 the bundle is invalid (nothing written), 2 usage or I/O error.
    """
    written = bundle_mod.extract(bundle_mod.load(bundle), target)
    _emit(as_json, {"bundle": str(bundle), "target": str(target),
                    "files": [str(w) for w in written]},
          f"extracted {len(written)} files into {target}")


@click.command("replay")
@click.argument("source")
@RUNS_DIR_OPT
@click.option("--into", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="RUNS_DIR for the replay run (default: the original's RUNS_DIR, or ./runs).")
@click.option("--pubkey", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Verify a bundle's signature with this public key first.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Thread count (default: the recorded one).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=None,
              help="Give up on the entry point after this many seconds.")
@click.option("--stream", is_flag=True, help="Show the entry point's output as it runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@_errors
def replay_cmd(source: str, runs_dir: Path | None, into: Path | None, pubkey: Path | None,
               threads: int | None, timeout_s: float | None, stream: bool,
               as_json: bool) -> None:
    """Re-execute a run (folder, or id / id prefix / name in RUNS_DIR) or a bundle (.rtb)
    deterministically and compare every logged metric step by step with the original.

    Exit 0 bit-identical, 1 diverged (prints the first step, metric and both values) or the
    entry point failed, 2 replay impossible (prints what differs: versions, device, data
    digests; or the bundle, its signature or the run's record is invalid), usage or I/O
    error.
    """
    from . import replay as replay_mod

    try:
        _replay(source, runs_dir, into, pubkey, threads, timeout_s, stream, as_json)
    except (signing.SignatureError, bundle_mod.BundleError) as e:
        click.echo(f"replay impossible: invalid bundle or record: {e}", err=True)
        sys.exit(replay_mod.EXIT_IMPOSSIBLE)


def _replay(source: str, runs_dir: Path | None, into: Path | None, pubkey: Path | None,
            threads: int | None, timeout_s: float | None, stream: bool, as_json: bool) -> None:
    from . import replay as replay_mod

    path = Path(source)
    if path.is_file():
        data = bundle_mod.read_bytes_limited(path)
        if pubkey is not None:
            signing.verify_bytes(data, signing.read_signature(signing.signature_path(path)),
                                 signing.load_public(pubkey))
        b = bundle_mod.parse(data)
        original = b.index.get("run_id")
        target = into or Path("runs")
    else:
        run_dir = locate_run(source, runs_dir)
        b = bundle_mod.parse(bundle_mod.from_run(run_dir))
        original = run_dir.resolve().name
        target = into or run_dir.resolve().parent
    out = replay_mod.replay(b, original, target, threads=threads, timeout_s=timeout_s,
                            stream=stream)
    if as_json:
        click.echo(json.dumps(out.to_dict(), indent=2))
    else:
        for w in out.warnings:
            click.echo(f"warning: {w}", err=True)
        for p in out.problems:
            click.echo(f"  {p}")
        if out.exit_code == replay_mod.EXIT_DIVERGED and out.output_tail:
            click.echo(out.output_tail, err=True)
        run = f" (replay run {out.replay_run} in {target})" if out.replay_run else ""
        click.echo(f"{out.message}{run}")
    sys.exit(out.exit_code)


COMMANDS: list[click.Command] = [bundle_group, replay_cmd]
