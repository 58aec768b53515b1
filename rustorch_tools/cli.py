"""`python -m rustorch_tools` / `rustorch-tools`: the command-line entry.

Exit codes (every command): 0 clean, 1 findings at error level (or a failed gate),
2 usage or I/O error. Commands live next to the code they drive; this module only
assembles the group and gives every command the same conventions:

- RUNS_DIR is the first positional argument of every command that uses one, and
  $RUSTORCH_RUNS_DIR when it is left out. Commands that also name runs or files
  (`runs show [RUNS_DIR] RUN`, `compare [RUNS_DIR] RUN...`) tell the two apart by count; for
  `compare`, whose RUN list has no fixed length, the first argument is RUNS_DIR when it is a
  directory that is not itself a run (no run.json in it). The older `--runs-dir` (`--root`
  for `runs`) options stay as aliases, so scripts written before keep working.
- `--json` (an alias of `--format json` where a command has formats);
- the exit codes in `--help`.
"""

import functools
import inspect
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from .analytics.cli import COMMANDS as ANALYTICS_COMMANDS
from .analytics.dashboard import dashboard_cmd
from .governance.cli import COMMANDS as GOVERNANCE_COMMANDS
from .pipeline.cli import COMMANDS as PIPELINE_COMMANDS
from .repro.cli import COMMANDS as REPRO_COMMANDS
from .store.cli import COMMANDS as STORE_COMMANDS
from .tracing.cli import COMMANDS as TRACE_COMMANDS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rustorch")
def cli() -> None:
    """rustorch experiment tools: runs, checkpoints, governance, analytics, replay, pipelines, traces."""


RUNS_DIR_ENV = "RUSTORCH_RUNS_DIR"
EXIT_CODES = ("Exit codes: 0 success, 1 a check failed (findings at error level, a failed "
              "gate, a run that cannot be read), 2 usage or I/O error.")


def _leaves(command: click.Command) -> Iterator[click.Command]:
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            yield from _leaves(sub)
    else:
        yield command


def _json_alias(command: click.Command, fmt_param: str) -> None:
    """`--json` on a command that spells it `--format json`."""
    command.params.append(click.Option(["--json", "as_json_alias"], is_flag=True,
                                       help="Same as --format json."))
    callback = command.callback
    assert callback is not None

    @functools.wraps(callback)
    def wrapped(*args: Any, as_json_alias: bool = False, **kwargs: Any) -> Any:
        if as_json_alias:
            kwargs[fmt_param] = "json"
        return callback(*args, **kwargs)

    command.callback = wrapped


_EXIT_RE = re.compile(r"\bexit(\s+codes?)?:?\s+0\b|usage or i/o error", re.IGNORECASE)
RUNS_DIR_HELP = ("RUNS_DIR: the runs directory, the first argument; $RUSTORCH_RUNS_DIR when it "
                 "is left out.")


def _value_arity(command: click.Command, ctx: click.Context) -> dict[str, int]:
    """How many values each option spelling takes (0 for flags)."""
    arity: dict[str, int] = {}
    for p in command.get_params(ctx):
        if isinstance(p, click.Option):
            n = 0 if (p.is_flag or p.count) else max(1, p.nargs)
            for spelling in (*p.opts, *p.secondary_opts):
                arity[spelling] = n
    return arity


def _positionals(args: list[str], arity: dict[str, int]) -> list[int]:
    """Indices of the positional tokens of `args` (click's own rules: `--` ends options,
    `--opt=value` and `-jN` carry their value, unknown options are left to click)."""
    found: list[int] = []
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "--":
            found += range(i + 1, len(args))
            break
        if tok.startswith("-") and tok != "-":
            name = tok.split("=", 1)[0]
            i += 1 if ("=" in tok or name not in arity) else 1 + arity[name]
            continue
        found.append(i)
        i += 1
    return found


def _runs_dir_positional(command: click.Command, alias: click.Option) -> None:
    """Lets `command`, which names RUNS_DIR by the option `alias`, take it as its first
    positional argument like every other command; the option stays as an alias."""
    own = [p for p in command.params if isinstance(p, click.Argument)]
    variadic = any(p.nargs < 0 for p in own)
    fixed = sum(p.nargs for p in own if p.nargs > 0)
    required = alias.required
    alias.required = False
    alias.envvar = RUNS_DIR_ENV
    alias.show_envvar = True
    alias.help = "Same as the RUNS_DIR argument (the older spelling, kept as an alias)."
    command.options_metavar = "[OPTIONS] [RUNS_DIR]"
    original = command.parse_args

    def parse_args(ctx: click.Context, args: list[str]) -> list[str]:
        args = list(args)
        if any(a in ("-h", "--help") for a in args):
            return original(ctx, args)
        pos = _positionals(args, _value_arity(command, ctx))
        if variadic:
            first = Path(args[pos[0]]) if len(pos) >= 2 else None
            given = first is not None and first.is_dir() and not (first / "run.json").exists()
        else:
            given = len(pos) == fixed + 1
        if given:
            if any(a in alias.opts or a.split("=", 1)[0] in alias.opts for a in args):
                raise click.UsageError(f"RUNS_DIR given twice (argument and {alias.opts[0]})", ctx)
            value = args.pop(pos[0])
            args = [alias.opts[0], value, *args]
        elif required and not os.environ.get(RUNS_DIR_ENV) and not any(
                a.split("=", 1)[0] in alias.opts for a in args):
            raise click.UsageError(f"Missing argument 'RUNS_DIR' (or set ${RUNS_DIR_ENV}).", ctx)
        return original(ctx, args)

    command.parse_args = parse_args  # type: ignore[method-assign]


def _uniform(command: click.Command) -> None:
    """What every command shares: RUNS_DIR first and from $RUSTORCH_RUNS_DIR when not
    given, --json, and the exit codes in --help."""
    command.help = inspect.cleandoc(command.help or "")  # before appending unindented text
    uses_runs_dir = False
    for param in command.params:
        if param.name in ("runs_dir", "root"):
            uses_runs_dir = True
            param.envvar = RUNS_DIR_ENV
            if isinstance(param, click.Option):
                _runs_dir_positional(command, param)
    if uses_runs_dir and RUNS_DIR_HELP not in (command.help or ""):
        command.help = (command.help or "").rstrip() + "\n\n" + RUNS_DIR_HELP
    names = {p.name for p in command.params}
    if "as_json" not in names:
        fmt = next((p.name for p in command.params if p.name is not None and "--format" in getattr(p, "opts", ())), None)
        if fmt is not None:
            _json_alias(command, fmt)
    if not _EXIT_RE.search(command.help or ""):
        command.help = (command.help or "").rstrip() + "\n\n" + EXIT_CODES


for command in (*STORE_COMMANDS, *GOVERNANCE_COMMANDS, *ANALYTICS_COMMANDS, dashboard_cmd,
                *REPRO_COMMANDS, *PIPELINE_COMMANDS, *TRACE_COMMANDS):
    for leaf in _leaves(command):
        _uniform(leaf)
    cli.add_command(command)


def main() -> None:
    cli(prog_name="rustorch-tools")
