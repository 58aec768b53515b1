"""`replay`: re-execute a recorded run (or a bundle) and compare its metrics bit for bit.

1. Load the bundle (a `.rtb` file, or one built in memory from a run).
2. Check the environment: the versions that decide bit-exactness (identity.CRITICAL_VERSIONS),
   the device, the data files' digests and the entry point's presence. Any difference: exit 2,
   nothing is executed. Code or other package differences are warnings.
3. Run the entry point (`python SCRIPT ARGV` / `python -m MODULE ARGV`, cwd = the code root)
   with the recorded argument vector, its runs-dir option pointed at the target RUNS_DIR,
   and RUSTORCH_REPLAY telling `record.record_entry_point` to apply the recorded thread count
   and deterministic-algorithms setting (on unless the entry point opted out), tag the run `replay_of` and report its id.
4. Compare the RNG states recorded at the same point, then every logged metric, step by step.
Exit codes: 0 bit-identical, 1 diverged (or the entry point failed), 2 replay impossible.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import bundle as bundle_mod
from . import compare, identity, record

EXIT_IDENTICAL, EXIT_DIVERGED, EXIT_IMPOSSIBLE = 0, 1, 2
OUTPUT_TAIL = 4000


@dataclass
class Outcome:
    exit_code: int
    message: str
    original: str | None = None
    replay_run: str | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    comparison: compare.Comparison | None = None
    output_tail: str = ""

    def to_dict(self) -> dict[str, Any]:
        comp = self.comparison
        return {
            "exit_code": self.exit_code, "message": self.message, "original": self.original,
            "replay_run": self.replay_run, "problems": self.problems, "warnings": self.warnings,
            "compared_values": comp.compared if comp else 0,
            "skipped_metrics": comp.skipped if comp else [],
            "divergence": (comp.divergence.__dict__ if comp and comp.divergence else None),
        }


def _current_device_ok(device: str | None) -> str | None:
    """None when `device` can be used here, else why not."""
    if not device or device.split(":")[0] == "cpu":
        return None
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        return f"device {device!r}: {exc}"
    if dev.type == "cpu":
        return None
    acc = torch.accelerator.current_accelerator(check_available=True)
    if acc is None or acc.type != dev.type:
        return f"device: recorded {device!r}, here the accelerator is {acc.type if acc else None!r}"
    if dev.index is not None and dev.index >= torch.accelerator.device_count():
        return f"device: recorded {device!r}, here only {torch.accelerator.device_count()} devices"
    return None


def data_path(entry: dict[str, Any], root: Path) -> Path:
    rel = entry.get("relpath")
    if rel and (root / rel).exists():
        return root / rel
    return Path(entry["path"])


def environment_problems(rec: dict[str, Any], root: Path) -> tuple[list[str], list[str]]:
    """(problems that make replay impossible, warnings)."""
    problems = [f"versions differ: {d}" for d in
                identity.version_differences(rec["environment"], identity.environment_lock())]
    dev = _current_device_ok(rec["runtime"].get("device"))
    if dev:
        problems.append(dev)
    for entry in rec["data"]:
        path = data_path(entry, root)
        try:
            st = path.stat()
            if not stat.S_ISREG(st.st_mode):  # never hash a FIFO or /dev/zero named by a bundle
                problems.append(f"data file {path} is not a regular file")
                continue
            if st.st_size != entry.get("size"):
                problems.append(f"data digest differs: {path}: {st.st_size} bytes here, "
                                f"{entry.get('size')} recorded")
                continue
            digest = identity.sha256_file(path)
        except OSError as exc:
            problems.append(f"data file {path}: cannot read ({exc.strerror})")
            continue
        if digest != entry["sha256"]:
            problems.append(f"data digest differs: {path}: recorded sha256 "
                            f"{entry['sha256'][:16]}…, here {digest[:16]}…")
    ent = rec["entry"]
    if ent.get("kind") == "pipeline":
        problems.append("a pipeline bundle without a run: replay a run the pipeline produced")
    elif ent.get("kind") == "script" and not _script_path(ent, root).is_file():
        problems.append(f"entry point {ent['script']} not found under {root}")
    warnings = []
    code_now = identity.code_identity(root, [_script_path(ent, root)] if ent.get("kind") == "script" else [])
    code = rec["code"]
    if code.get("source_sha256") != code_now["source_sha256"]:
        warnings.append(f"code differs: source digest recorded {str(code.get('source_sha256'))[:12]}…, "
                        f"here {code_now['source_sha256'][:12]}… (git {code.get('git_commit')} "
                        f"-> {code_now['git_commit']})")
    rec_pkgs = set(rec["environment"].get("packages", []))
    now_pkgs = set(identity.installed_packages())
    if rec_pkgs != now_pkgs:
        changed = sorted(rec_pkgs ^ now_pkgs)
        warnings.append(f"installed packages differ ({len(changed)} lines, e.g. "
                        f"{', '.join(changed[:4])})")
    return problems, warnings


def _script_path(entry: dict[str, Any], root: Path) -> Path:
    script = Path(entry["script"])
    return script if script.is_absolute() else root / script


def replay_argv(entry: dict[str, Any], runs_dir: Path) -> list[str]:
    """The recorded argument vector with its runs-dir option pointed at `runs_dir`."""
    argv, option = list(entry.get("argv", [])), entry.get("runs_dir_option")
    if not option:
        return argv
    out, i, found = [], 0, False
    while i < len(argv):
        arg = argv[i]
        if arg == option and i + 1 < len(argv):
            out += [option, str(runs_dir)]
            i, found = i + 2, True
            continue
        if arg.startswith(option + "="):
            out.append(f"{option}={runs_dir}")
            found = True
        else:
            out.append(arg)
        i += 1
    return out if found else [*out, option, str(runs_dir)]


def command_for(entry: dict[str, Any], runs_dir: Path, root: Path) -> list[str]:
    argv = replay_argv(entry, runs_dir)
    if entry["kind"] == "script":
        return [sys.executable, str(_script_path(entry, root)), *argv]
    return [sys.executable, "-m", str(entry["module"]), *argv]


def _rng_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def replay(
    source: bundle_mod.Bundle,
    original: str | None,
    runs_dir: Path,
    *,
    threads: int | None = None,
    timeout_s: float | None = None,
    root: Path | None = None,
    stream: bool = False,
) -> Outcome:
    root = Path(root or identity.code_root())
    rec = source.record()
    try:
        expected = compare.parse_lines(source.entries.get("metrics.jsonl", b""))
    except ValueError as exc:
        raise bundle_mod.BundleError(f"metrics.jsonl: {exc}") from exc
    problems, warnings = environment_problems(rec, root)
    if problems:
        return Outcome(EXIT_IMPOSSIBLE, "replay impossible: the environment differs",
                       original, problems=problems, warnings=warnings)
    runs_dir.mkdir(parents=True, exist_ok=True)
    n_threads = threads or rec["runtime"].get("threads") or 1
    with tempfile.TemporaryDirectory(prefix="rustorch-replay-") as tmp:
        id_file = Path(tmp) / "run_id"
        env = dict(os.environ)
        env[record.ENV_VAR] = json.dumps({"of": original, "threads": n_threads,
                                          "deterministic": bool(rec["runtime"].get("deterministic", True)),
                                          "run_id_file": str(id_file)})
        env["OMP_NUM_THREADS"] = str(n_threads)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        cmd = command_for(rec["entry"], runs_dir.resolve(), root)
        try:
            proc = subprocess.run(cmd, cwd=root, env=env, timeout=timeout_s, text=True,
                                  stdout=None if stream else subprocess.PIPE,
                                  stderr=None if stream else subprocess.STDOUT)
        except subprocess.TimeoutExpired:
            return Outcome(EXIT_DIVERGED, f"the entry point ran past {timeout_s} s", original,
                           warnings=warnings)
        tail = (proc.stdout or "")[-OUTPUT_TAIL:]
        new_id = id_file.read_text() if id_file.exists() else None
    if proc.returncode != 0:
        return Outcome(EXIT_DIVERGED, f"the entry point exited {proc.returncode}", original,
                       new_id, warnings=warnings, output_tail=tail)
    if new_id is None:
        return Outcome(EXIT_IMPOSSIBLE, "the entry point did not record its run "
                       "(no record_entry_point call)", original, warnings=warnings,
                       output_tail=tail)
    new_dir = runs_dir / new_id
    new_rec = bundle_mod.read_record(new_dir)
    rng_diff = _rng_differences(rec.get("rng", {}), new_rec.get("rng", {}))
    got = compare.parse_lines(bundle_mod.metric_lines(new_dir))
    comp = compare.compare(expected, got, rec.get("volatile_metrics", []))
    out = Outcome(EXIT_IDENTICAL, "", original, new_id, warnings=warnings, comparison=comp,
                  output_tail=tail)
    if rng_diff:
        out.problems.append("RNG state at the recording point differs: " + ", ".join(rng_diff))
    if comp.divergence is not None:
        out.exit_code, out.message = EXIT_DIVERGED, comp.divergence.describe()
    elif rng_diff:
        out.exit_code, out.message = EXIT_DIVERGED, out.problems[-1]
    elif not expected:
        out.message = "bit-identical (the original logged no metrics)"
    else:
        out.message = (f"bit-identical: {comp.compared} values compared"
                       + (f", skipped as timings: {', '.join(comp.skipped)}" if comp.skipped else ""))
    return out
