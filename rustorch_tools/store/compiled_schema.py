"""The JSON Schemas of rustorch_tools/schemas/, compiled once with fastjsonschema.

Validation of 10,000 run.json files cannot afford jsonschema's ~1 ms each; the compiled
validators answer in microseconds from the very same schema files (no hand-written copy to
keep in sync). They say only valid / not valid: for the messages of an invalid document,
`schema.validate_document` (jsonschema) is called.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

import fastjsonschema

from . import schema


@functools.cache
def _compiled(name: str) -> Callable[[Any], Any]:
    doc = copy.deepcopy(schema.load_schema(name))  # compile() rewrites $refs in place
    doc.pop("$schema", None)  # 2020-12 files; the keywords used are all in draft 7
    return fastjsonschema.compile(doc)


def is_valid(name: str, doc: Any) -> bool:
    """Whether `doc` is valid under `<name>.v1.json`; never raises for any JSON value."""
    try:
        _compiled(name)(doc)
    except fastjsonschema.JsonSchemaException:
        return False
    except (RecursionError, TypeError, ValueError):
        return False  # let jsonschema produce the message
    return True


def run_doc_ok(doc: Any) -> bool:
    return is_valid("run", doc)


def manifest_ok(doc: Any) -> bool:
    return is_valid("manifest", doc)
