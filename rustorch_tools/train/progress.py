"""Progress bars that stay out of logs: shown only when stdout is a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm


def wants_progress(setting: bool | None) -> bool:
    """`None` (the default) means: only when stdout is a TTY (no bar floods a CI log)."""
    if setting is not None:
        return setting
    return bool(getattr(sys.stdout, "isatty", lambda: False)())


def bar(iterable: Iterable[Any], total: int, desc: str, enabled: bool) -> tqdm:
    return tqdm(iterable, total=total, desc=desc, unit="batch", disable=not enabled,
                file=sys.stdout, dynamic_ncols=True, leave=False)
