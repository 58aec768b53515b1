"""`RunStore`: the one object that reads and writes RUNS_DIR (docs/runs-format.md).

    store = RunStore("runs")
    files = store.run("20260101-000000-mnist-1a2b3c4d")   # one run's files
    files.append_event("note", {"text": "hello"})
    for run_dir in store.iter_run_dirs(): ...

`RunStore` owns the tree: run folders, the reserved folders (`.quarantine`, `.audit`,
`.index`, `.locks`), quarantine moves and the audit trail. `RunFiles` owns one run folder:
run.json, metrics.jsonl / events.jsonl rows, manifest.json, artifacts/ and checkpoints/.
Every path under RUNS_DIR is built here from the layout constants; the other packages
(logging, checkpoints, governance, analytics) call these methods. Writes never follow a link
out of RUNS_DIR: reserved folders, checkpoints/ and artifacts/ that are links are refused,
appends refuse linked files, whole-file writes replace through a temp file in the same folder.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ..errors import LinkedFileError, RunNotFoundError, RustorchToolsError
from . import atomic, audit, fastjson, jsonl, layout, locks, manifest, runs

PathLike = str | os.PathLike[str]
QUARANTINE_FILE = "QUARANTINE.json"
RELEASED_DIR = "released"  # under .audit/: quarantine records of released runs
AUDIT_MARKER = "audit.json"  # under .locks/: says an audit trail was started here


class UnsafePathError(LinkedFileError):
    """A folder the store would write into is a link or not a folder."""


def _real_dir(path: Path, what: str, create: bool) -> Path:
    """`path` as a real folder (created when asked); links and files are refused."""
    if create and not os.path.lexists(path):
        try:
            path.mkdir()
            atomic.fsync_dir(path.parent)
        except FileExistsError:
            pass  # created concurrently: checked below like any other
    if path.is_symlink() or (os.path.lexists(path) and not path.is_dir()):
        raise UnsafePathError(errno.ELOOP, f"{path} must be a folder inside RUNS_DIR (found a "
                              f"link or a file; {what} refuses to write through it); move it "
                              "away first")
    return path


class RunFiles:
    """The files of one run folder. Create through `RunStore.run` / `RunStore.at`."""

    def __init__(self, store: RunStore, run_dir: Path) -> None:
        self.store = store
        self.dir = run_dir
        self.run_id = run_dir.name

    def __repr__(self) -> str:
        return f"RunFiles({str(self.dir)!r})"

    # -- paths (read-only use by callers: display, relative names) --------------------------
    def path(self, relpath: str) -> Path:
        return self.dir / relpath

    @property
    def metrics_path(self) -> Path:
        return self.dir / layout.METRICS

    @property
    def events_path(self) -> Path:
        return self.dir / layout.EVENTS

    # -- run.json ---------------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.dir / layout.RUN_JSON).exists()

    def lock(self, timeout: float = locks.RUN_LOCK_TIMEOUT_S) -> AbstractContextManager[None]:
        return runs.run_lock(self.dir, timeout)

    def read_bytes(self, name: str) -> bytes:
        """The bytes of a top-level file of the run (links and special files refused)."""
        return read_regular(self.dir / layout.validate_name(name, "file name", 255))

    def read_raw(self) -> dict[str, Any]:
        return runs.read_run_raw(self.dir)

    def read(self, validate: bool = True) -> dict[str, Any]:
        return runs.read_run(self.dir, validate)

    def write(self, doc: dict[str, Any]) -> None:
        runs.write_run(self.dir, doc)

    def update(self, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        return runs.update_run(self.dir, change)

    def create_dirs(self) -> None:
        """The run folder itself (RUNS_DIR is created too); a link in its place is refused."""
        self.store.root.mkdir(parents=True, exist_ok=True)
        _real_dir(self.dir, "the run store", create=True)

    def init_layout(self) -> None:
        """checkpoints/ and artifacts/ of a new run."""
        _real_dir(self.dir / layout.CHECKPOINTS, "the run store", create=True)
        _real_dir(self.dir / layout.ARTIFACTS, "the run store", create=True)

    def signature(self) -> list[list[int] | None]:
        """(size, mtime_ns, inode) of run.json and metrics.jsonl (lstat: links not followed);
        what caches compare to know that a run changed."""
        parts: list[list[int] | None] = []
        for name in (layout.RUN_JSON, layout.METRICS):
            try:
                st = os.lstat(self.dir / name)
            except FileNotFoundError:
                parts.append(None)
            else:
                parts.append([st.st_size, st.st_mtime_ns, st.st_ino])
        return parts

    # -- rows -------------------------------------------------------------------------------
    def append_metrics(self, data: bytes) -> None:
        """Append complete, encoded metric lines in one locked write."""
        try:
            atomic.append_line(self.metrics_path, data)
        except FileNotFoundError:
            if not self.dir.is_dir():
                raise RunNotFoundError(
                    f"run folder {self.dir} was moved or deleted while this process was "
                    "writing it (quarantined?); nothing was written") from None
            raise

    def append_rows(self, rows: Iterable[dict[str, Any]], kind: str = "metrics") -> int:
        return runs.append_rows(self._jsonl(kind), rows)

    def append_event(self, event: str, detail: dict[str, Any] | None = None,
                     rank: int | None = None, now: float | None = None) -> dict[str, Any]:
        return runs.append_event(self.dir, event, detail, rank=rank, now=now)

    def iter_metrics(self) -> Iterator[dict[str, Any]]:
        return runs.iter_metrics(self.dir)

    def iter_events(self) -> Iterator[dict[str, Any]]:
        return runs.iter_events(self.dir)

    def iter_valid_rows(self, kind: str = "metrics") -> Iterator[dict[str, Any]]:
        return jsonl.iter_valid_rows(self._jsonl(kind))

    def scan(self, kind: str = "metrics") -> Iterator[jsonl.LineResult]:
        return jsonl.scan(self._jsonl(kind))

    def fsync(self, kind: str = "metrics") -> None:
        """fsync metrics.jsonl or events.jsonl (no-op when absent)."""
        try:
            fd = os.open(self._jsonl(kind), os.O_RDONLY | os.O_NOFOLLOW)
        except (FileNotFoundError, OSError):
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _jsonl(self, kind: str) -> Path:
        if kind == "metrics":
            return self.metrics_path
        if kind == "events":
            return self.events_path
        raise ValueError(f"unknown JSONL file kind {kind!r} (metrics or events)")

    # -- manifest ---------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any]:
        return manifest.read_manifest(self.dir)

    def add_manifest_file(self, relpath: str, sha256: str | None = None,
                          verified: bool = True, blake3: str | None = None) -> dict[str, Any]:
        return manifest.add_file(self.dir, relpath, sha256=sha256, verified=verified, blake3=blake3)

    def remove_manifest_files(self, relpaths: list[str]) -> None:
        manifest.remove_files(self.dir, relpaths)

    def record_logs(self) -> dict[str, Any]:
        """Record what metrics.jsonl / events.jsonl hold now (manifest.json `logs`)."""
        return manifest.record_logs(self.dir)

    def verify_manifest(self) -> list[manifest.Mismatch]:
        return manifest.verify(self.dir)

    # -- artifacts --------------------------------------------------------------------------
    def artifact_exists(self, name: str) -> bool:
        return os.path.lexists(self.dir / layout.ARTIFACTS / layout.validate_name(name, "artifact name"))

    def artifact_names(self, prefix: str = "") -> list[str]:
        """Names of the regular files directly in artifacts/ that start with `prefix`, sorted;
        links, folders and special files are left out, and so is everything when artifacts/
        itself is a link or missing."""
        folder = self.dir / layout.ARTIFACTS
        if folder.is_symlink() or not folder.is_dir():
            return []
        return sorted(e.name for e in os.scandir(folder)
                      if e.name.startswith(prefix) and e.is_file(follow_symlinks=False))

    def read_artifact(self, name: str, limit: int | None = None) -> bytes:
        """The bytes of artifacts/<name> (a regular file; links and special files refused);
        with `limit`, a file larger than it is refused with RustorchToolsError."""
        folder = self.dir / layout.ARTIFACTS
        if folder.is_symlink():
            raise RustorchToolsError(f"{folder} is a link, not the run's artifacts folder")
        path = folder / layout.validate_name(name, "artifact name", 255)
        data = read_regular(path, None if limit is None else limit + 1)
        if limit is not None and len(data) > limit:
            raise RustorchToolsError(f"{path} is larger than {limit} bytes")
        return data

    def copy_artifact(self, src: Path, relpath: str) -> tuple[str, int]:
        """Copy `src` to `<run>/<relpath>` (under artifacts/) atomically and record it in the
        manifest; returns (sha256, size). Every folder on the way must be a real folder."""
        manifest.check_relpath(relpath)
        if not relpath.startswith(layout.ARTIFACTS + "/"):
            raise RustorchToolsError(f"artifact path {relpath!r} must be under {layout.ARTIFACTS}/")
        dest = self._safe_parent(relpath, create=True) / relpath.rsplit("/", 1)[-1]
        digest, size = _copy_atomic(src, dest)
        self.add_manifest_file(relpath, sha256=digest)
        return digest, size

    def _safe_parent(self, relpath: str, create: bool) -> Path:
        """The folder that holds `relpath`, each component checked to be a real folder."""
        here = self.dir
        for part in relpath.split("/")[:-1]:
            here = _real_dir(here / part, "the run store", create=create)
        return here

    # -- checkpoints ------------------------------------------------------------------------
    def checkpoints_dir(self, create: bool = True) -> Path:
        """checkpoints/ as a real folder of this run (a link is refused)."""
        return _real_dir(self.dir / layout.CHECKPOINTS, "the run store", create=create)

    def checkpoint_relpath(self, file_name: str) -> str:
        return f"{layout.CHECKPOINTS}/{layout.validate_name(file_name, 'checkpoint file', 255)}"

    def read_latest(self) -> dict[str, Any]:
        """checkpoints/latest as a dict (FileNotFoundError when absent)."""
        return read_pointer(self.dir / layout.CHECKPOINTS / layout.LATEST)

    def write_latest(self, pointer: dict[str, Any]) -> None:
        atomic.atomic_write_json(self.checkpoints_dir() / layout.LATEST, pointer)

    def remove_checkpoints(self, paths: list[Path]) -> None:
        """Delete rotated-away checkpoint files, then forget them in the manifest."""
        directory = self.checkpoints_dir(create=False)
        for path in paths:
            if path.parent != directory:
                raise RustorchToolsError(f"{path} is not in {directory}")
            path.unlink(missing_ok=True)
        if paths:
            atomic.fsync_dir(directory)
            self.remove_manifest_files([f"{layout.CHECKPOINTS}/{p.name}" for p in paths])


class RunStore:
    """One RUNS_DIR. Cheap to create; holds no open files."""

    def __init__(self, root: PathLike) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    @classmethod
    def of_run_dir(cls, run_dir: PathLike) -> RunFiles:
        """The RunFiles of a run folder given by its path (its parent is RUNS_DIR)."""
        path = Path(run_dir)
        return RunFiles(cls(path.parent), path)

    # -- runs -------------------------------------------------------------------------------
    def run(self, run_id: str) -> RunFiles:
        return RunFiles(self, layout.run_dir(self.root, run_id))

    def at(self, folder: PathLike) -> RunFiles:
        """A run folder by path (a run folder, or one in quarantine) that lies in this store."""
        path = Path(folder)
        if path.parent not in (self.root, self.root / layout.QUARANTINE_DIR):
            raise RustorchToolsError(f"{path} is not a run folder of {self.root}")
        return RunFiles(self, path)

    def quarantined(self, run_id: str) -> RunFiles:
        return RunFiles(self, self.root / layout.QUARANTINE_DIR / layout.validate_run_id(run_id))

    def has_run(self, run_id: str) -> bool:
        return (layout.run_dir(self.root, run_id) / layout.RUN_JSON).exists()

    def iter_run_dirs(self) -> Iterator[Path]:
        return layout.iter_run_dirs(self.root)

    def run_ids(self) -> list[str]:
        return [p.name for p in self.iter_run_dirs()]

    # -- reserved folders -------------------------------------------------------------------
    def reserved(self, name: str, create: bool = True) -> Path:
        """`RUNS_DIR/<name>` as a real folder (created when asked); links and files refused."""
        if name not in (layout.QUARANTINE_DIR, layout.AUDIT_DIR, layout.INDEX_DIR, locks.LOCKS_DIR,
                        layout.PIPELINES_DIR):
            raise ValueError(f"{name!r} is not a reserved folder")
        return _real_dir(self.root / name, "governance", create=create)

    @property
    def quarantine_dir(self) -> Path:
        return self.root / layout.QUARANTINE_DIR

    @property
    def audit_dir(self) -> Path:
        return self.root / layout.AUDIT_DIR

    @property
    def index_path(self) -> Path:
        """Where `.index` is (not checked; use index_dir before writing into it)."""
        return self.root / layout.INDEX_DIR

    def index_dir(self, create: bool = True) -> Path:
        """`.index` for the analytics cache: a real folder whose resolved path is inside RUNS_DIR."""
        path = self.reserved(layout.INDEX_DIR, create=create)
        if create and not path.resolve().is_relative_to(self.root.resolve()):
            raise UnsafePathError(errno.ELOOP, f"{path} resolves outside {self.root}")
        return path

    def set_aside_in_index(self, name: str, tag: str) -> Path | None:
        """Move `.index/<name>` aside to `.index/<name>.<tag>` (one rename inside the index
        folder; a damaged cache is kept for a bug report, never deleted). A link at `name` is
        moved as the link, never followed; a `.index` that is a link is refused. Returns the
        new path, or None when `name` does not exist."""
        folder = self.index_dir(create=False)
        src = folder / layout.validate_name(name, "index file name", 255)
        dst = folder / layout.validate_name(f"{name}.{tag}", "index file name", 255)
        if not os.path.lexists(src):
            return None
        os.replace(src, dst)
        atomic.fsync_dir(folder)
        return dst

    def tree_lock(self, timeout: float = locks.TREE_LOCK_TIMEOUT_S) -> AbstractContextManager[None]:
        """The RUNS_DIR-wide lock of commands that move or rewrite runs."""
        return locks.tree_lock(self.reserved(locks.LOCKS_DIR), timeout)

    # -- quarantine -------------------------------------------------------------------------
    def quarantine_move(self, folder: str, record: dict[str, Any],
                        before_move: Callable[[], None] | None = None) -> Path:
        """Move run folder `folder` to `.quarantine/<folder>/` (one rename) and write its
        QUARANTINE.json. `before_move` runs right before the rename (write-ahead audit).
        The caller holds `tree_lock`. Returns the new folder."""
        layout.validate_run_id(folder)
        qdir = self.reserved(layout.QUARANTINE_DIR)
        src, dst = self.root / folder, qdir / folder
        if src.is_symlink() or not src.is_dir():
            raise RustorchToolsError(f"{src} is not a run folder")
        if _holds_runs_dir(src):
            raise RustorchToolsError(f"{src} holds a runs directory, not a run; not quarantined")
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "a quarantined run with this folder name exists",
                                  str(dst))
        if before_move is not None:
            before_move()
        os.rename(src, dst)
        atomic.fsync_dir(self.root)
        atomic.fsync_dir(qdir)
        atomic.atomic_write_json(dst / QUARANTINE_FILE, record)
        return dst

    def release_move(self, run_id: str, before_move: Callable[[], None] | None = None) -> Path:
        """Move `.quarantine/<run_id>` back (its QUARANTINE.json kept under
        `.audit/released/`). The caller holds `tree_lock`. Returns the new folder."""
        src = self.quarantined(run_id).dir
        dst = self.root / run_id
        if src.is_symlink() or not src.is_dir():
            raise RustorchToolsError(f"{run_id!r} is not in {self.quarantine_dir}")
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "a run with this id already exists", str(dst))
        if before_move is not None:
            before_move()
        record = src / QUARANTINE_FILE
        if record.exists() or record.is_symlink():
            self.reserved(layout.AUDIT_DIR)
            rdir = _real_dir(self.audit_dir / RELEASED_DIR, "governance", create=True)
            os.rename(record, rdir / f"{run_id}.{time.time():.6f}.json")
            atomic.fsync_dir(rdir)
            atomic.fsync_dir(src)
        os.rename(src, dst)
        atomic.fsync_dir(self.root)
        atomic.fsync_dir(src.parent)
        return dst

    def read_quarantine_record(self, folder: Path) -> dict[str, Any] | None:
        """QUARANTINE.json of a quarantined run; None if absent, a link or unreadable."""
        try:
            data = read_regular(folder / QUARANTINE_FILE)
            doc = fastjson.loads(data)
        except (OSError, ValueError, RecursionError, RustorchToolsError):
            return None
        return doc if isinstance(doc, dict) else None

    # -- audit ------------------------------------------------------------------------------
    def audit_append(self, command: str, details: dict[str, Any]) -> dict[str, Any]:
        """Append one hash-chained entry to `.audit/log.jsonl`.

        Refuses (AuditChainError) to start a new chain where an old one was lost: a head
        without its log, or no `.audit` where this RUNS_DIR recorded that it had one.
        """
        lost = self.audit_lost()
        if lost:
            raise audit.AuditChainError(f"{self.audit_dir}: {lost}; not starting a new chain "
                                        "over it (restore it from a backup)")
        adir = self.reserved(layout.AUDIT_DIR)
        marker = self.reserved(locks.LOCKS_DIR) / AUDIT_MARKER
        if not marker.exists():
            atomic.atomic_write_json(marker, {"audit": layout.AUDIT_DIR, "started_at": time.time()})
        return audit.append(adir, command, details)

    def audit_lost(self) -> str | None:
        """Why the audit trail counts as lost, or None (absent before any command is fine)."""
        adir = self.audit_dir
        if adir.is_symlink():
            return None  # reported (and refused) as a link elsewhere
        log, head = adir / audit.LOG_NAME, adir / audit.HEAD_NAME
        if not os.path.lexists(log):
            if os.path.lexists(head):
                return f"{audit.HEAD_NAME} exists but {audit.LOG_NAME} is missing (deleted log)"
            if os.path.lexists(self.root / locks.LOCKS_DIR / AUDIT_MARKER):
                return f"{audit.LOG_NAME} is missing but this RUNS_DIR had an audit trail"
        return None

    def audit_verify(self) -> audit.AuditStatus:
        status = audit.verify(self.root)
        lost = self.audit_lost()
        if lost:
            status.ok = False
            status.present = True
            status.problems.insert(0, {"line": None, "problem": lost})
        return status


def find_run(path: PathLike) -> RunFiles | None:
    """The run a folder is, or whose checkpoints/ folder it is; None for any other folder."""
    path = Path(path)
    if (path / layout.RUN_JSON).exists():
        return RunStore.of_run_dir(path)
    if path.name == layout.CHECKPOINTS and (path.parent / layout.RUN_JSON).exists():
        return RunStore.of_run_dir(path.parent)
    return None


def checkpoint_folder_lock(directory: Path) -> AbstractContextManager[None]:
    """The lock of a plain checkpoint folder (outside any run): its own `.lock`."""
    return locks.run_lock(directory)


def latest_pointer_path(directory: Path) -> Path:
    return directory / layout.LATEST


def write_latest_pointer(directory: Path, pointer: dict[str, Any]) -> None:
    """`latest` of a plain checkpoint folder (a run's goes through RunFiles.write_latest)."""
    atomic.atomic_write_json(latest_pointer_path(directory), pointer)


def read_pointer(path: Path) -> dict[str, Any]:
    """A small JSON pointer file (checkpoints/latest), read without following links."""
    doc = fastjson.loads(read_regular(path, limit=1 << 20))
    if not isinstance(doc, dict):
        raise ValueError(f"{path.name} is a JSON {type(doc).__name__}, not an object")
    return doc


def read_regular(path: Path, limit: int | None = None) -> bytes:
    """The bytes of a regular file; links, FIFOs, sockets and devices are refused (never
    followed, never blocked on)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RustorchToolsError(f"{path} is not a regular file")
        return fh.read() if limit is None else fh.read(limit)


def _holds_runs_dir(folder: Path) -> bool:
    """Whether `folder` looks like a RUNS_DIR (run folders or reserved folders inside) rather
    than a run: such a folder is never moved as one run."""
    if (folder / layout.RUN_JSON).exists():
        return False
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    for e in entries:
        if e.name in (layout.QUARANTINE_DIR, layout.AUDIT_DIR, layout.INDEX_DIR, locks.LOCKS_DIR,
                      layout.PIPELINES_DIR):
            return True
        if e.is_dir(follow_symlinks=False) and os.path.lexists(os.path.join(e.path, layout.RUN_JSON)):
            return True
    return False


def _copy_atomic(src: Path, dest: Path) -> tuple[str, int]:
    """Copy `src` to `dest` through a temp file + fsync + rename; returns (sha256, size)."""
    tmp = atomic.temp_path_for(dest)
    digest = hashlib.sha256()
    size = 0
    try:
        with open(src, "rb") as fin, open(tmp, "xb") as fout:
            while chunk := fin.read(1 << 20):
                digest.update(chunk)
                fout.write(chunk)
                size += len(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        shutil.copymode(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    atomic.fsync_dir(dest.parent)
    return digest.hexdigest(), size


def require_run(store: RunStore, run_id: str) -> RunFiles:
    files = store.run(run_id)
    if not files.exists():
        raise RunNotFoundError(f"no run {run_id!r} under {store.root}")
    return files
