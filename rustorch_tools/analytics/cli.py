"""CLI commands of rustorch_tools.analytics (added to the group in rustorch_tools.cli)."""

import click

COMMANDS: list[click.Command] = []
