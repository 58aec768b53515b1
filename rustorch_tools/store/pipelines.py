"""Pipeline state under RUNS_DIR/.pipelines/ (what rustorch_tools.pipeline keeps between runs).

    RUNS_DIR/.pipelines/<pipeline name>/state.json           the last invocation
    RUNS_DIR/.pipelines/<pipeline name>/exec/<exec_id>/      one execution: spec.json, lock,
        attempts.json, outputs-<run>.json, failed-<run>.json, result.json, launcher.log

Like every other path under RUNS_DIR these folders are made and checked here: `.pipelines`,
a pipeline's folder, `exec/` and an execution folder are real folders (a link or a file in
their place is refused with UnsafePathError before anything is written), whole-file writes
are atomic (temp file in the same folder + fsync + rename, never through a link), reads take
regular files only (links, FIFOs and devices are refused, never followed or blocked on) of a
bounded size, and the one log file is appended to without following links.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ..errors import InvalidNameError, LinkedFileError
from . import atomic, layout, locks
from .runstore import RunStore, UnsafePathError, _real_dir

STATE = "state.json"
EXEC = "exec"
LOCK = "lock"
MAX_STATE_BYTES = 64 * 1024 * 1024


def dumps(obj: Any) -> bytes:
    """The pipeline files' JSON: indented, sorted keys, NaN refused, other objects as str."""
    return json.dumps(obj, indent=1, sort_keys=True, allow_nan=False, default=str).encode()


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON in `path`, or None when it is absent; ValueError when it is not a plain
    readable JSON file (a link, a FIFO, too big, malformed)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError(f"{path} is a symbolic link, not a regular file") from None
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{path} is not a regular file")
        if st.st_size > MAX_STATE_BYTES:
            raise ValueError(f"{path} is larger than {MAX_STATE_BYTES} bytes")
        data = f.read(MAX_STATE_BYTES + 1)
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{path}: {exc}") from None


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Replace `path` with `obj` as JSON, atomically (a link at `path` is replaced, not
    written through)."""
    atomic.atomic_write_bytes(path, dumps(obj))


class ExecFiles:
    """The files of one execution folder (`.pipelines/<name>/exec/<exec_id>/`)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.dir = Path(folder)
        if self.dir.is_symlink() or not self.dir.is_dir():
            raise UnsafePathError(errno.ELOOP, f"{self.dir} must be a real execution folder "
                                  "(found a link, a file or nothing)")

    def __repr__(self) -> str:
        return f"ExecFiles({str(self.dir)!r})"

    def path(self, name: str) -> Path:
        return self.dir / layout.validate_name(name, "execution file")

    def read(self, name: str) -> Any:
        return read_json(self.path(name))

    def write(self, name: str, obj: Any) -> None:
        write_json(self.path(name), obj)

    def exists(self, name: str) -> bool:
        return os.path.lexists(self.path(name))

    def publish(self, src: str, dest: str) -> None:
        """Make `dest` name the (already durable) file `src` atomically: a hard link under a
        temp name renamed over `dest`; only the folder needs syncing."""
        src_path, dest_path = self.path(src), self.path(dest)
        if not stat.S_ISREG(os.lstat(src_path).st_mode):
            raise LinkedFileError(errno.ELOOP, f"{src_path} is not a regular file")
        tmp = atomic.temp_path_for(dest_path)
        os.link(src_path, tmp, follow_symlinks=False)
        try:
            os.replace(tmp, dest_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        atomic.fsync_dir(self.dir)

    def lock(self) -> AbstractContextManager[None]:
        """The execution's lock: a second attempt waits while the first still runs."""
        return locks.execution_lock(self.dir / LOCK)

    def open_log(self, name: str) -> int:
        """A descriptor appending to the log file `name` (created 0644; links refused)."""
        path = self.path(name)
        try:
            return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise LinkedFileError(errno.ELOOP, f"{path} is a symbolic link; refusing to "
                                      "append through it") from None
            raise


class PipelineFiles:
    """The state folder of one pipeline in one RUNS_DIR."""

    def __init__(self, runs_dir: str | os.PathLike[str], name: str) -> None:
        self.store = RunStore(runs_dir)
        self.name = layout.validate_name(name, "pipeline name")

    @property
    def dir(self) -> Path:
        """Where the folder is (not checked: `folder()` checks before writing)."""
        return self.store.root / layout.PIPELINES_DIR / self.name

    def folder(self, create: bool = True) -> Path:
        """The pipeline's folder as a real folder inside `.pipelines` (created when asked)."""
        if create:
            self.store.root.mkdir(parents=True, exist_ok=True)
        top = self.store.reserved(layout.PIPELINES_DIR, create=create)
        return _real_dir(top / self.name, "pipeline", create=create)

    @property
    def state_path(self) -> Path:
        return self.dir / STATE

    def read_state(self) -> Any:
        """state.json, or None when the pipeline never ran here; ValueError when a folder on
        the way or the file is not what this tool writes (a link, a FIFO, malformed)."""
        for folder in (self.store.root / layout.PIPELINES_DIR, self.dir):
            if folder.is_symlink():
                raise ValueError(f"{folder} is a link, not a folder of this RUNS_DIR")
        return read_json(self.state_path)

    def is_exec_id(self, exec_id: object) -> bool:
        """Whether `exec_id` can name an execution folder (a string, no path separators)."""
        try:
            layout.validate_name(exec_id, "execution id")
        except InvalidNameError:
            return False
        return True

    def write_state(self, doc: Any) -> None:
        write_json(self.folder() / STATE, doc)

    def read_exec(self, exec_id: str, name: str) -> Any:
        """A file of an execution without creating anything: None when it (or its folder) is
        absent; ValueError for a link on the way, a bad name or a file this tool did not write."""
        try:
            layout.validate_name(exec_id, "execution id")
            layout.validate_name(name, "execution file")
        except InvalidNameError as exc:
            raise ValueError(str(exc)) from None
        for folder in (self.store.root / layout.PIPELINES_DIR, self.dir, self.dir / EXEC, self.dir / EXEC / exec_id):
            if folder.is_symlink():
                raise ValueError(f"{folder} is a link, not a folder of this RUNS_DIR")
        return read_json(self.dir / EXEC / exec_id / name)

    def execution(self, exec_id: str, create: bool = True) -> ExecFiles:
        """The execution folder `exec/<exec_id>` (created, checked: links refused)."""
        layout.validate_name(exec_id, "execution id")
        execs = _real_dir(self.folder(create) / EXEC, "pipeline", create=create)
        return ExecFiles(_real_dir(execs / exec_id, "pipeline", create=create))
