"""``satchel users …``: manage accounts whatever the sign-up policy, as an operator of the release.

Each change is recorded in the audit trail as the admin console's are, with no actor and ``command line`` as
its client; its ``audit.<action>`` log line comes on stdout before the command's own line (factor XI).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from satchel.cli.context import process_settings, run_use_case

if TYPE_CHECKING:
    from satchel.bootstrap import Services
    from satchel.domain.accounts import User

app = typer.Typer(help="Manage accounts and invitations.", no_args_is_help=True)
OPERATOR = "command line"  # as domain.audit.COMMAND_LINE, without importing the core before a command runs


@app.command("create")
def create(
    email: str,
    admin: Annotated[bool, typer.Option("--admin", help="Make the account an administrator.")] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    quota: Annotated[str | None, typer.Option(help="Its quota with a binary unit, like 100GiB.")] = None,
) -> None:
    """Create an account with a password (whatever SATCHEL_SIGNUP says)."""
    size = _size(quota) if quota is not None else None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = run_use_case(
        lambda s: s.accounts.create_user(email, password, is_admin=admin, quota_bytes=size, client=OPERATOR)
    )
    typer.echo(f"created {user.email} (id {user.id}{', admin' if user.is_admin else ''})")


@app.command("list")
def list_users() -> None:
    """Every account, with role, state and storage used."""
    for user in run_use_case(lambda s: s.users.everyone()):
        role = "admin" if user.is_admin else "user"
        state = "disabled" if user.disabled else "active"
        typer.echo(f"{user.id}\t{user.email}\t{role}\t{state}\t{user.used_bytes}/{user.quota_bytes} bytes")


@app.command("disable")
def disable(email: str) -> None:
    """Disable an account: its sessions end and its API tokens are revoked; it can no longer sign in."""
    user = _change(email, disabled=True)
    typer.echo(f"disabled {user.email}")


@app.command("enable")
def enable(email: str) -> None:
    """Enable a disabled account again (its old sessions and tokens stay ended)."""
    user = _change(email, disabled=False)
    typer.echo(f"enabled {user.email}")


@app.command("admin")
def admin(
    email: str,
    grant: Annotated[bool, typer.Option("--grant/--revoke", help="Make an administrator, or no longer one.")],
) -> None:
    """Make an account an administrator (--grant), or no longer one (--revoke)."""
    user = _change(email, is_admin=grant)
    typer.echo(f"{user.email} is {'an administrator' if user.is_admin else 'no longer an administrator'}")


@app.command("quota")
def quota(email: str, size: Annotated[str, typer.Argument(help="With a binary unit: 500MiB, 100GiB, 1.5TiB.")]) -> None:
    """Set an account's quota (never below what it already uses)."""
    from satchel.domain.files import human_size

    user = _change(email, quota_bytes=_size(size))
    typer.echo(f"{user.email} may store {human_size(user.quota_bytes)} ({user.quota_bytes} bytes)")


@app.command("invite")
def invite(
    email: str,
    admin: Annotated[bool, typer.Option("--admin", help="The account opens as an administrator's.")] = False,
) -> None:
    """Invite an address by email to open an account (SATCHEL_SIGNUP open or invite); prints the link too,
    for an operator without mail."""
    from satchel.domain.invitations import invitation_path

    async def invited(services: Services) -> tuple[str, str, str]:
        new = await services.invitations.invite(email, is_admin=admin, client=OPERATOR)
        until = new.invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC")
        return new.invitation.email, services.settings.links_base + invitation_path(new.token), until

    address, link, until = run_use_case(invited, process_settings("admin"))
    typer.echo(f"invited {address}{' as an administrator' if admin else ''}: {link} (works once, until {until})")


def _change(
    email: str, *, disabled: bool | None = None, is_admin: bool | None = None, quota_bytes: int | None = None
) -> User:
    from satchel.services.users import UserChange

    change = UserChange(disabled=disabled, is_admin=is_admin, quota_bytes=quota_bytes)
    return run_use_case(lambda s: s.users.change(email, change, client=OPERATOR))


def _size(text: str) -> int:
    """A size typed with its unit, or exit 2 (a usage error) saying how to type one."""
    from satchel.domain.errors import InvalidInput
    from satchel.domain.files import parse_size

    try:
        return parse_size(text)
    except InvalidInput as exc:
        typer.echo(f"satchel: {exc.message}", err=True)
        raise typer.Exit(2) from None
