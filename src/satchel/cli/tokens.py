"""``satchel tokens …``: API tokens for scripts and CI."""

from __future__ import annotations

from typing import Annotated

import typer

from satchel.cli.context import run_use_case

app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)


@app.command("create")
def create(email: str, name: Annotated[str, typer.Option(help="What the token is for.")] = "automation") -> None:
    """Print a new API token for an account (shown once), for scripts and CI."""
    new = run_use_case(lambda s: s.accounts.token_for(email, name))
    typer.echo(new.secret)
