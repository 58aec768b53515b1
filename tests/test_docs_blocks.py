"""Every shell and Python block of README.md and docs/*.md runs, and every example JSONL line
with a `_crc` checks out.

Blocks fenced as ```bash / ```sh / ```shell run with `bash -euo pipefail`, ```python blocks with
the test's Python; the blocks of one file run in order, in one temporary folder that holds a
small synthetic RUNS_DIR (`runs/`, see `_synthetic_runs`) and a copy of the repository's
`examples/` (the MNIST subset and the example pipeline), with the repository on PYTHONPATH,
`python` and `rustorch-tools` on PATH, and $RUSTORCH_RUNS_DIR unset. Markers (an HTML comment on
the line right before the fence, invisible on rendered pages):

    <!-- docs-test: skip (why) -->   the block cannot run in a test (a long training run,
                                      torchrun, network, a fragment of a larger script); listed
                                      by test_skipped_blocks_are_listed
    <!-- docs-test: exit N -->       the block's last command exits N (run without -e)
    <!-- docs-test: write NAME -->   the block (any language, e.g. a TOML file) is written to
                                      NAME in the folder, for the blocks after it

A fence without a language whose lines look like commands fails test_command_blocks_are_tagged:
tag it (```bash) or, for a synopsis with [optional] parts, ```text.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import rustorch_tools
from rustorch_tools.store import jsonl

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL = {"bash", "sh", "shell"}
MARKER_RE = re.compile(r"<!--\s*docs-test:\s*(skip|exit|write)\b\s*(.*?)\s*-->")
COMMAND_RE = re.compile(r"^\s*(\$ )?(python3?|rustorch-tools|make|torchrun|pip|cd|export)\b")
BLOCK_TIMEOUT_S = 120


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    skip: str | None = None
    exit_code: int = 0
    write_to: str | None = None  # a file block: written there instead of run

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)```(\S*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        start, lang, indent = i, m.group(2).lower(), m.group(1)
        i += 1
        body = []
        while i < len(lines) and not re.match(rf"^{indent}```\s*$", lines[i]):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1
        block = Block(path, start + 1, lang, "\n".join(body) + "\n")
        prev = lines[start - 1] if start > 0 else ""
        marker = MARKER_RE.search(prev)
        if marker and marker.group(1) == "skip":
            block.skip = marker.group(2).strip("() ") or "no reason given"
        elif marker and marker.group(1) == "write":
            block.write_to = marker.group(2)
        elif marker:
            block.exit_code = int(marker.group(2))
        out.append(block)
    return out


ALL = [b for p in DOCS for b in blocks(p)]
RUNNABLE = [b for b in ALL if b.lang in SHELL | {"python"} and b.write_to is None]
FILES = sorted({b.path for b in RUNNABLE if b.skip is None})


def _synthetic_runs(root: Path) -> None:
    """The RUNS_DIR that the docs' examples name: two finished MNIST-like runs (the second
    a fork of the first with lr 2.0) and a finished baseline, 30 steps of loss / val_acc /
    step_time_ms and a little device telemetry each."""
    specs = [("20261130-101500-mnist-1a2b3c4d", "mnist", 1.0, None),
             ("20261130-111500-mnist-5e6f7a8b", "mnist-lr2", 2.0, "20261130-101500-mnist-1a2b3c4d"),
             ("20261129-090000-baseline-0f0f0f0f", "baseline", 1.0, None)]
    for k, (run_id, name, lr, parent) in enumerate(specs):
        with rustorch_tools.start_run(root, name=name, run_id=run_id, config={"lr": lr, "epochs": 1},
                                      seed=1, parent=parent) as run:
            for step in range(30):
                run.log_metrics({"loss": 2.0 / (step + 1) + 0.01 * k, "val_acc": 0.5 + step / 70 - 0.002 * k,
                                 "step_time_ms": 10.0 + k, "device/ops/native_total": 100 + step,
                                 "device/ops/add/fallback": step % 3,
                                 "device/memory/max_allocated_bytes": 1e6}, step=step)


@pytest.fixture(scope="module")
def runs_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("docs-runs")
    _synthetic_runs(root / "runs")
    shutil.copytree(REPO / "examples", root / "examples",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RUSTORCH_RUNS_DIR"}
    bindir = work / ".bin"
    bindir.mkdir(exist_ok=True)
    # `python` and `rustorch-tools` are this interpreter and this checkout, whatever PATH holds
    # (wrappers, not links: a link to a venv's python outside the venv loses the venv).
    for name, script in (("python", f'exec "{sys.executable}" "$@"'),
                         ("rustorch-tools", f'exec "{sys.executable}" -m rustorch_tools "$@"')):
        (bindir / name).write_text(f"#!/bin/sh\n{script}\n")
        (bindir / name).chmod(0o755)
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _run(block: Block, work: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if block.lang == "python":
        argv = [sys.executable, "-c", block.text]
    else:
        flags = "-uo pipefail" if block.exit_code else "-euo pipefail"
        argv = ["bash", "-c", f"set {flags}\n{block.text}"]
    return subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True,
                          timeout=BLOCK_TIMEOUT_S, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_blocks_of_a_file_run_in_order(path: Path, runs_template: Path, tmp_path: Path):
    work = tmp_path / "work"
    shutil.copytree(runs_template, work, symlinks=True)
    env = _env(work)
    for block in blocks(path):
        if block.write_to is not None:
            target = work / block.write_to
            assert target.parent == work, f"{block.where}: write NAME must be a plain file name"
            target.write_text(block.text, encoding="utf-8")
            continue
        if block.lang not in SHELL | {"python"} or block.skip is not None:
            continue
        res = _run(block, work, env)
        assert res.returncode == block.exit_code, (
            f"{block.where}: exit {res.returncode}, expected {block.exit_code}\n--- block\n{block.text}"
            f"--- stdout\n{res.stdout[-3000:]}\n--- stderr\n{res.stderr[-3000:]}")
        assert "Traceback (most recent call last)" not in res.stderr, f"{block.where}:\n{res.stderr}"


def test_skipped_blocks_are_listed(capsys):
    skipped = [b for b in RUNNABLE if b.skip is not None]
    with capsys.disabled():
        print(f"\ndocs blocks: {len(RUNNABLE)} shell/python, {len(RUNNABLE) - len(skipped)} run, "
              f"{len(skipped)} skipped:")
        for b in skipped:
            print(f"  {b.where} ({b.lang}): {b.skip}")
    assert all(b.skip.strip() for b in skipped)
    assert len(RUNNABLE) - len(skipped) >= 10  # the docs keep runnable examples


def test_command_blocks_are_tagged():
    untagged = [b.where for b in ALL if not b.lang and any(COMMAND_RE.match(ln) for ln in b.text.splitlines())]
    assert not untagged, f"fences holding commands need a language (```bash, or ```text for a synopsis): {untagged}"


def test_markers_sit_on_blocks():
    """A marker that is not right before a fence does nothing: refuse it."""
    for path in DOCS:
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if MARKER_RE.search(line):
                assert i + 1 < len(lines) and lines[i + 1].lstrip().startswith("```"), f"{path}:{i + 1}"


def test_example_jsonl_lines_carry_a_correct_crc():
    checked = 0
    for b in ALL:
        if b.lang != "jsonl":
            continue
        for line in b.text.splitlines():
            if '"_crc":' in line:
                jsonl.decode_line(line.encode())  # raises CorruptLineError on a wrong CRC
                checked += 1
    assert checked >= 2, "runs-format.md shows example lines with their CRC"


def test_governance_codes_table_matches_the_cli():
    """docs/governance.md's finding table says what `validate` prints: severity, title,
    repairable and remediation of every code, no code more or less."""
    from rustorch_tools.governance.findings import CODES

    rows = {}
    for line in (REPO / "docs" / "governance.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"\| `(RT\d+)` \| (\w+) \| (.*?) \| (.*?) \| (.*) \|$", line)
        if m:
            rows[m.group(1)] = m.groups()[1:]
    assert sorted(rows) == sorted(CODES)
    for code, (severity, title, repairable, remediation) in rows.items():
        spec = CODES[code]
        assert (severity, title, remediation) == (spec.severity.name.lower(), spec.title, spec.remediation), code
        assert (repairable.strip() == "yes") == spec.repairable, code
