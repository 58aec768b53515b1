"""`python -m rustorch_tools` / `rustorch-tools`: the command-line entry.

Exit codes (every command): 0 clean, 1 findings at error level (or a failed gate),
2 usage or I/O error. Commands live next to the code they drive; this module only
assembles the group and gives every command the same conventions: RUNS_DIR defaults to
$RUSTORCH_RUNS_DIR, `--json` (an alias of `--format json` where a command has formats), and
the exit codes in `--help`.
"""

import functools
from collections.abc import Iterator
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
EXIT_CODES = ("Exit codes: 0 clean, 1 findings at error level (or a failed gate, a run that "
              "cannot be read), 2 usage or I/O error.")


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


def _uniform(command: click.Command) -> None:
    """What every command shares: RUNS_DIR from $RUSTORCH_RUNS_DIR when not given, --json,
    and the exit codes in --help."""
    for param in command.params:
        if param.name in ("runs_dir", "root"):
            param.envvar = RUNS_DIR_ENV
            if isinstance(param, click.Option):
                param.show_envvar = True
    names = {p.name for p in command.params}
    if "as_json" not in names:
        fmt = next((p.name for p in command.params if p.name is not None and "--format" in getattr(p, "opts", ())), None)
        if fmt is not None:
            _json_alias(command, fmt)
    if "usage or i/o error" not in (command.help or "").lower():
        command.help = (command.help or "").rstrip() + "\n\n" + EXIT_CODES


for command in (*STORE_COMMANDS, *GOVERNANCE_COMMANDS, *ANALYTICS_COMMANDS, dashboard_cmd,
                *REPRO_COMMANDS, *PIPELINE_COMMANDS, *TRACE_COMMANDS):
    for leaf in _leaves(command):
        _uniform(leaf)
    cli.add_command(command)


def main() -> None:
    cli(prog_name="rustorch-tools")
