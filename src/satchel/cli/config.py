"""``satchel config``: the configuration this environment gives the processes."""

from __future__ import annotations

import typer

from satchel.cli.context import valid_settings


def config() -> None:
    """Print the effective configuration (secrets hidden) and where each value came from."""
    settings = valid_settings("config")
    from satchel.settings import describe

    entries = list(describe(settings))
    width = max(len(e.name) for e in entries)
    for entry in entries:
        typer.echo(f"{entry.name:<{width}}  {entry.value or '-'}  ({entry.source})")
