"""`python -m rustorch_tools.train CONFIG.toml [--runs-dir runs]`: train as a config says.

The config is a TOML or JSON file (docs/training.md), or inline JSON with `--config-json`.
The run is recorded for `python -m rustorch_tools replay` (the pipeline's train stages record
themselves as this command with their resolved config inline). Prints the run id and the
last evaluation as JSON. Exit codes: 0 trained, 1 training failed, 2 bad config, data or usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from . import idx
from .config import ConfigError, load, record_for_replay, resolve, run_config


def _config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    if (args.config is None) == (args.config_json is None):
        parser.error("give a CONFIG file or --config-json, not both or neither")
    if args.config_json is not None:
        try:
            cfg = json.loads(args.config_json)
        except ValueError as exc:
            raise ConfigError([f"--config-json: {exc}"]) from None
        if not isinstance(cfg, dict):
            raise ConfigError(["--config-json must hold a JSON object"])
        return resolve(cfg)
    if args.config.suffix == ".json":
        from ..pipeline.spec import read_small_text

        try:
            return resolve(json.loads(read_small_text(args.config)))
        except (OSError, ValueError) as exc:
            raise ConfigError([f"{args.config}: {exc}"]) from None
    return resolve(load(args.config))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rustorch_tools.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="?", type=Path, help="training config (.toml or .json)")
    parser.add_argument("--config-json", default=None, help="the config as inline JSON")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    args = parser.parse_args(argv)
    try:
        cfg = _config(args, parser)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        out = run_config(cfg, args.runs_dir, on_run_start=lambda run: record_for_replay(cfg, run))
    except (idx.IdxNotFound, idx.IdxFormatError) as exc:  # the run is marked failed
        print(f"error: bad data: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"run_id": out["run_id"], "metrics": out["metrics"], "epochs": out["epochs"],
                      "steps": out["steps"]}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
