"""`python -m rustorch_tools` / `rustorch-tools`: the command-line entry.

Exit codes (every command): 0 clean, 1 findings at error level (or a failed gate),
2 usage or I/O error. Commands live next to the code they drive; this module only
assembles the group.
"""

import click

from .analytics.cli import COMMANDS as ANALYTICS_COMMANDS
from .governance.cli import COMMANDS as GOVERNANCE_COMMANDS
from .pipeline.cli import COMMANDS as PIPELINE_COMMANDS
from .store.cli import COMMANDS as STORE_COMMANDS
from .tracing.cli import COMMANDS as TRACE_COMMANDS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rustorch")
def cli() -> None:
    """rustorch experiment tools: runs, checkpoints, governance, analytics, pipelines, traces."""


for command in (*STORE_COMMANDS, *GOVERNANCE_COMMANDS, *ANALYTICS_COMMANDS, *PIPELINE_COMMANDS,
                *TRACE_COMMANDS):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="rustorch-tools")
