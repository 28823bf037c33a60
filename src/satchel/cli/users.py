"""``satchel users …``: manage accounts, including when sign-up is switched off."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from satchel.cli.context import run_use_case

app = typer.Typer(help="Manage accounts.", no_args_is_help=True)


@app.command("create")
def create(
    email: str,
    admin: Annotated[bool, typer.Option("--admin", help="Make the account an administrator.")] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
) -> None:
    """Create an account (works even when sign-up is switched off)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = run_use_case(lambda s: s.accounts.create_user(email, password, is_admin=admin))
    typer.echo(f"created {user.email} (id {user.id}{', admin' if user.is_admin else ''})")


@app.command("list")
def list_users() -> None:
    """Every account, with role, state and storage used."""
    for user in run_use_case(lambda s: s.accounts.users()):
        role = "admin" if user.is_admin else "user"
        state = "disabled" if user.disabled else "active"
        typer.echo(f"{user.id}\t{user.email}\t{role}\t{state}\t{user.used_bytes}/{user.quota_bytes} bytes")


@app.command("disable")
def disable(email: str) -> None:
    """Disable an account: it can no longer sign in, use its tokens or its shares' owner pages."""
    user = run_use_case(lambda s: s.accounts.set_disabled(email, True))
    typer.echo(f"disabled {user.email}")


@app.command("enable")
def enable(email: str) -> None:
    """Enable a disabled account again."""
    user = run_use_case(lambda s: s.accounts.set_disabled(email, False))
    typer.echo(f"enabled {user.email}")
