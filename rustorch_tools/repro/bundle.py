"""The `.rtb` config bundle: everything needed to reproduce a run (or a pipeline), as a
deterministic, size-limited POSIX tar.

Entries (all regular files, `/`-separated relative names, sorted): `bundle.json` (format,
kind, source, and SHA-256 + size of every other entry), `config.json`, `entry.json`,
`code.json`, `environment.json`, `requirements.lock`, `data.json`, `seeds.json`,
`runtime.json`, and for runs `run.json` and `metrics.jsonl` (the expected metrics), for
pipelines `pipeline/<file>`. Every tar header has mtime 0, uid/gid 0, no owner names and
mode 0644, so the same inputs give the same bytes. Reading refuses anything else: links,
folders, devices, absolute names, `..`, duplicates, entries over MAX_ENTRY_BYTES, entries not
listed in (or not matching) bundle.json. Format: docs/reproducibility.md.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import stat
import tarfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RustorchToolsError
from ..store import atomic, layout, manifest, runs
from . import record

FORMAT = "rustorch-bundle"
VERSION = 1
INDEX = "bundle.json"
MAX_ENTRY_BYTES = 64 << 20
MAX_BUNDLE_BYTES = 256 << 20
MAX_ENTRIES = 256
MAX_NAME = 100  # ustar name field
REQUIRED = ("config.json", "entry.json", "code.json", "environment.json", "requirements.lock",
            "data.json", "seeds.json", "runtime.json")


class BundleError(RustorchToolsError):
    """A bundle that is malformed, unsafe or cannot be built; the message says why."""


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False,
                      allow_nan=False).encode("utf-8") + b"\n"


def check_name(name: str) -> str:
    """Refuse entry names that could reach outside an extraction folder."""
    if not name or len(name.encode()) > MAX_NAME:
        raise BundleError(f"entry name {name!r} is empty or longer than {MAX_NAME} bytes")
    if name.startswith("/") or "\\" in name or (len(name) > 1 and name[1] == ":"):
        raise BundleError(f"entry {name!r} has an absolute path")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise BundleError(f"entry {name!r} has an empty, '.' or '..' path component")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise BundleError(f"entry {name!r} has control characters")
    return name


# -- writing -----------------------------------------------------------------------------------
def pack(entries: dict[str, bytes], meta: dict[str, Any]) -> bytes:
    """The bundle bytes: bundle.json (meta + digests) and `entries`, sorted, normalised headers."""
    files = {}
    for name, data in entries.items():
        check_name(name)
        if name == INDEX:
            raise BundleError(f"{INDEX} is reserved")
        if len(data) > MAX_ENTRY_BYTES:
            raise BundleError(f"entry {name} is {len(data)} bytes, over {MAX_ENTRY_BYTES}")
        files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    index = {**meta, "format": FORMAT, "version": VERSION, "files": files}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in sorted({**entries, INDEX: canonical(index)}.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


def write(path: Path, data: bytes) -> None:
    """A user's output file: atomic, 0644, a link at `path` replaced, never written through."""
    atomic.write_output(path, data)


def metric_lines(run_dir: Path) -> bytes:
    """Expected metrics, one canonical line per row: {"step", "rank"?, "metrics": {...}}."""
    lines = []
    for row in runs.iter_metrics(run_dir):
        values = {}
        for k, v in row.items():
            if k in ("step", "time", "rank"):
                continue
            if isinstance(v, float) and not math.isfinite(v):
                v = "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
            values[k] = v
        out: dict[str, Any] = {"step": row["step"], "metrics": values}
        if "rank" in row:
            out["rank"] = row["rank"]
        lines.append(json.dumps(out, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    return b"".join(lines)


def read_record(run_dir: Path) -> dict[str, Any]:
    """artifacts/replay.json of a run, checked against the run's manifest."""
    rel = f"{layout.ARTIFACTS}/{record.ARTIFACT}"
    path = run_dir / rel
    if not path.is_file() or path.is_symlink():
        raise BundleError(
            f"run {run_dir.name} has no {rel}: its entry point did not record what replay needs "
            "(call rustorch_tools.repro.record.record_entry_point; docs/reproducibility.md)")
    if path.stat().st_size > MAX_ENTRY_BYTES:
        raise BundleError(f"{path} is over {MAX_ENTRY_BYTES} bytes")
    listed = manifest.read_manifest(run_dir).get("files", {}).get(rel)
    data = path.read_bytes()
    if listed is None or listed.get("sha256") != hashlib.sha256(data).hexdigest():
        raise BundleError(f"{path} does not match the run's manifest.json (modified?)")
    doc = json.loads(data)
    if not isinstance(doc, dict) or doc.get("format") != record.FORMAT:
        raise BundleError(f"{path} is not a {record.FORMAT} document")
    if doc.get("version") != record.VERSION:
        raise BundleError(f"{path}: version {doc.get('version')!r}, this code reads {record.VERSION}")
    return check_record(doc)


def _record_entries(rec: dict[str, Any]) -> dict[str, bytes]:
    env = dict(rec["environment"])
    packages = env.pop("packages", [])
    entry = dict(rec["entry"])
    entry["volatile_metrics"] = rec.get("volatile_metrics", [])
    return {
        "entry.json": canonical(entry),
        "code.json": canonical(rec["code"]),
        "environment.json": canonical(env),
        "requirements.lock": "".join(f"{p}\n" for p in packages).encode(),
        "data.json": canonical(rec["data"]),
        "seeds.json": canonical({"seed": rec.get("seed"), "rng": rec.get("rng", {})}),
        "runtime.json": canonical(rec["runtime"]),
    }


def from_run(run_dir: Path) -> bytes:
    """Bundle bytes for a recorded run."""
    run_dir = Path(run_dir)
    doc = runs.read_run(run_dir)
    rec = read_record(run_dir)
    entries = _record_entries(rec)
    entries["config.json"] = canonical(doc.get("config", {}))
    entries["run.json"] = canonical(doc)
    entries["metrics.jsonl"] = metric_lines(run_dir)
    return pack(entries, {"kind": "run", "run_id": doc["run_id"], "name": doc.get("name")})


def from_pipeline(path: Path) -> bytes:
    """Bundle bytes for a pipeline file: the file, its parsed config, code and environment."""
    from . import identity

    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise BundleError(f"{path} is not a regular file")
    if st.st_size > MAX_ENTRY_BYTES:
        raise BundleError(f"{path} is {st.st_size} bytes, over {MAX_ENTRY_BYTES}")
    data = path.read_bytes()
    name = check_name(f"pipeline/{path.name}")
    try:
        if path.suffix == ".json":
            config = json.loads(data)
        elif path.suffix == ".toml":
            config = tomllib.loads(data.decode())
        else:
            config = None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: cannot parse ({exc})") from exc
    import torch

    env = identity.environment_lock()
    packages = env.pop("packages")
    entries = {
        name: data,
        "config.json": canonical(config),
        "entry.json": canonical({"kind": "pipeline", "file": name, "argv": [],
                                 "runs_dir_option": None, "volatile_metrics":
                                 sorted(record.DEFAULT_VOLATILE)}),
        "code.json": canonical(identity.code_identity()),
        "environment.json": canonical(env),
        "requirements.lock": "".join(f"{p}\n" for p in packages).encode(),
        "data.json": canonical([]),
        "seeds.json": canonical({"seed": None, "rng": {}}),
        "runtime.json": canonical({"device": None, "threads": torch.get_num_threads(),
                                   "interop_threads": torch.get_num_interop_threads(),
                                   "deterministic": True}),
    }
    return pack(entries, {"kind": "pipeline", "name": path.name})


# -- reading -----------------------------------------------------------------------------------
@dataclass
class Bundle:
    index: dict[str, Any]
    entries: dict[str, bytes]

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.entries[name])
        except KeyError:
            raise BundleError(f"bundle has no {name}") from None
        except ValueError as exc:
            raise BundleError(f"bundle entry {name} is not valid JSON ({exc})") from exc

    def record(self) -> dict[str, Any]:
        """The replay record the bundle was made from (inverse of `_record_entries`)."""
        entry = self.json("entry.json")
        env = self.json("environment.json")
        if not isinstance(env, dict):
            raise BundleError("environment.json is not an object")
        env["packages"] = self.entries["requirements.lock"].decode("utf-8", "replace").splitlines()
        seeds = self.json("seeds.json")
        if not isinstance(seeds, dict):
            raise BundleError("seeds.json is not an object")
        return check_record({"entry": entry, "code": self.json("code.json"), "environment": env,
                             "data": self.json("data.json"), "seed": seeds.get("seed"),
                             "rng": seeds.get("rng", {}), "runtime": self.json("runtime.json"),
                             "volatile_metrics": entry.get("volatile_metrics", [])
                             if isinstance(entry, dict) else []})


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def check_record(rec: dict[str, Any]) -> dict[str, Any]:
    """Refuse a replay record whose shape the tools would trip over (a hostile bundle)."""
    for key in ("entry", "code", "environment", "runtime", "rng"):
        if not isinstance(rec.get(key), dict):
            raise BundleError(f"replay record: {key} is not an object")
    entry = rec["entry"]
    kind = entry.get("kind")
    if kind not in ("script", "module", "pipeline"):
        raise BundleError(f"replay record: unknown entry kind {kind!r}")
    if kind == "script" and not isinstance(entry.get("script"), str):
        raise BundleError("replay record: the script entry has no script path")
    if kind == "module" and not isinstance(entry.get("module"), str):
        raise BundleError("replay record: the module entry has no module name")
    if not _is_str_list(entry.get("argv", [])) or not isinstance(
            entry.get("runs_dir_option"), str | None):
        raise BundleError("replay record: argv must be a list of strings")
    if not _is_str_list(rec.get("volatile_metrics", [])) or not _is_str_list(
            rec["environment"].get("packages", [])):
        raise BundleError("replay record: volatile_metrics/packages must be lists of strings")
    data = rec.get("data")
    if not isinstance(data, list) or not all(
            isinstance(d, dict) and isinstance(d.get("path"), str)
            and isinstance(d.get("sha256"), str) and isinstance(d.get("size"), int)
            and isinstance(d.get("relpath", ""), str) for d in data):
        raise BundleError("replay record: data must list {path, sha256, size} objects")
    threads = rec["runtime"].get("threads")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise BundleError("replay record: runtime.threads must be a positive integer")
    if not isinstance(rec["runtime"].get("device"), str | None):
        raise BundleError("replay record: runtime.device must be a string")
    return rec


def read_bytes_limited(path: Path) -> bytes:
    """The bundle file's bytes; refuses links to devices/FIFOs and oversized files."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise BundleError(f"cannot open {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BundleError(f"{path} is not a regular file")
        if st.st_size > MAX_BUNDLE_BYTES:
            raise BundleError(f"{path} is {st.st_size} bytes, over the {MAX_BUNDLE_BYTES} limit")
        return fh.read(MAX_BUNDLE_BYTES + 1)


def parse(data: bytes) -> Bundle:
    """Check every entry and the index; raises BundleError naming the first problem."""
    entries: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
            for count, member in enumerate(tf, 1):
                if count > MAX_ENTRIES:
                    raise BundleError(f"more than {MAX_ENTRIES} entries")
                name = member.name
                if member.issym() or member.islnk():
                    raise BundleError(f"entry {name!r} is a link (to {member.linkname!r})")
                if not member.isreg():
                    raise BundleError(f"entry {name!r} is not a regular file")
                check_name(name)
                if member.size > MAX_ENTRY_BYTES:
                    raise BundleError(f"entry {name!r} is {member.size} bytes, over the "
                                      f"{MAX_ENTRY_BYTES}-byte limit")
                if name in entries:
                    raise BundleError(f"entry {name!r} appears twice")
                fh = tf.extractfile(member)
                assert fh is not None  # regular file
                entries[name] = fh.read()
    except tarfile.TarError as exc:
        raise BundleError(f"not a bundle (tar): {exc}") from exc
    if INDEX not in entries:
        raise BundleError(f"no {INDEX}")
    try:
        index = json.loads(entries.pop(INDEX))
    except ValueError as exc:
        raise BundleError(f"{INDEX} is not valid JSON ({exc})") from exc
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise BundleError(f"{INDEX}: not a {FORMAT}")
    if index.get("version") != VERSION:
        raise BundleError(f"{INDEX}: version {index.get('version')!r}; this code reads {VERSION}")
    files = index.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"{INDEX}: no files map")
    for name in sorted(set(entries) | set(files)):
        if name not in files:
            raise BundleError(f"entry {name!r} is not listed in {INDEX}")
        if name not in entries:
            raise BundleError(f"{INDEX} lists {name!r}, which the bundle lacks")
        want = files[name]
        data_ = entries[name]
        if (not isinstance(want, dict) or want.get("size") != len(data_)
                or want.get("sha256") != hashlib.sha256(data_).hexdigest()):
            raise BundleError(f"entry {name!r} does not match its digest in {INDEX}")
    for name in REQUIRED:
        if name not in entries:
            raise BundleError(f"bundle lacks {name}")
    return Bundle(index, entries)


def load(path: Path) -> Bundle:
    return parse(read_bytes_limited(Path(path)))


def extract(bundle: Bundle, target: Path) -> list[Path]:
    """Write the entries (and bundle.json) under `target`, never outside it, never over a file.

    Folders are created one component at a time and must be real folders (not links);
    files are created with O_EXCL | O_NOFOLLOW.
    """
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or not target.is_dir():
        raise BundleError(f"{target} is not a folder")
    base = target.resolve()
    written = []
    items = {**bundle.entries, INDEX: canonical(bundle.index)}
    for name, data in sorted(items.items()):
        parts = check_name(name).split("/")
        here = base
        for part in parts[:-1]:
            here = here / part
            try:
                os.mkdir(here)
            except FileExistsError:
                pass
            if not stat.S_ISDIR(os.lstat(here).st_mode):
                raise BundleError(f"{here} exists and is not a folder (link?); not extracting")
        dest = here / parts[-1]
        if not dest.resolve().is_relative_to(base):
            raise BundleError(f"entry {name!r} would land outside {base}")
        try:
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            raise BundleError(f"{dest} exists; extract into an empty folder") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise BundleError(f"{dest} is a link; not extracting") from None
            raise
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        written.append(dest)
    return written
