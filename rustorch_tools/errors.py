"""Errors raised by rustorch_tools; every one derives from RustorchToolsError."""

from __future__ import annotations


class RustorchToolsError(Exception):
    """Base class of every error rustorch_tools raises on purpose."""


class InvalidNameError(RustorchToolsError, ValueError):
    """A run id, run name, metric name or artifact name that is not allowed."""


class CorruptLineError(RustorchToolsError, ValueError):
    """A JSONL line that fails its CRC, is not JSON, or is not an object."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SchemaValidationError(RustorchToolsError, ValueError):
    """A document that does not match its JSON Schema; `errors` lists every finding."""

    def __init__(self, name: str, errors: list[str]) -> None:
        super().__init__(f"invalid {name} document: " + "; ".join(errors))
        self.name = name
        self.errors = errors


class UnsupportedSchemaVersion(RustorchToolsError):
    """A file written by a newer rustorch_tools (or with a version we cannot read)."""


class CorruptRunError(RustorchToolsError):
    """run.json exists but cannot be read (bad JSON, not an object, schema violations)."""


class RunNotFoundError(RustorchToolsError, FileNotFoundError):
    """No run directory / run.json where one was expected."""


class CorruptCheckpointError(RustorchToolsError):
    """A checkpoint whose bytes do not match a recorded digest (SHA-256 or BLAKE3), or that
    cannot be parsed."""

    def __init__(
        self,
        path: str,
        message: str,
        expected: str | None = None,
        actual: str | None = None,
        algorithm: str = "sha256",
    ) -> None:
        detail = f"{path}: {message}"
        if expected is not None or actual is not None:
            detail += f" (expected {algorithm} {expected}, got {actual})"
        super().__init__(detail)
        self.path = path
        self.expected = expected
        self.actual = actual
        self.algorithm = algorithm


class UnsupportedCheckpointVersion(RustorchToolsError):
    """A checkpoint whose format_version is newer than this code knows."""


class NotSerializableError(RustorchToolsError, TypeError):
    """A config / params / tags / extra value that cannot be stored as JSON."""


class ArtifactExistsError(RustorchToolsError, FileExistsError):
    """log_artifact would replace an artifact of the same name (pass overwrite=True)."""


class RunStateError(RustorchToolsError):
    """An operation that the run's state does not allow (e.g. logging after finish)."""


class CheckpointNotFoundError(RustorchToolsError, FileNotFoundError):
    """No checkpoint file where one was asked for (empty directory, missing `latest`)."""


class LinkedFileError(RustorchToolsError, OSError):
    """A run file that is a symbolic link (or a hard link, or points outside RUNS_DIR):
    never written through, never read from outside, since it could reach any file."""
