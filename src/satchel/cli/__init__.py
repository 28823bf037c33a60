"""``satchel``: every process type and admin command, in the same release and environment (factor XII).

One module per command group; this one is the table of contents. Each command imports what it runs inside
its own body: a process type loads only its own stack (the web process no Celery, the worker no web
framework), and ``satchel --version`` not even the settings.
"""

from __future__ import annotations

from typing import Annotated

import typer

from satchel import __version__
from satchel.cli import audit, config, expiry, files, jobs, processes, shell, storage, tokens, users

app = typer.Typer(
    name="satchel",
    help="Self-hosted file sharing: run its processes and admin tasks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from satchel.runtime.release import current_release

        typer.echo(f"satchel {__version__} (release {current_release()})")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version and release.")
    ] = False,
) -> None:
    """Self-hosted file sharing, built as a reference twelve-factor app."""


# The order here is the order of `satchel --help`.
app.command()(processes.dev)
app.command()(processes.web)
app.command()(processes.worker)
app.command()(processes.migrate)
app.command()(config.config)
app.command("purge-expired")(expiry.purge_expired)
app.command()(shell.shell)
app.add_typer(jobs.app, name="jobs")
app.add_typer(users.app, name="users")
app.add_typer(tokens.app, name="tokens")
app.add_typer(files.app, name="files")
app.add_typer(storage.app, name="storage")
app.add_typer(audit.app, name="audit")


def main() -> None:
    """The ``satchel`` entry point: run the command, then leave through ``exit_now`` with its exit code."""
    try:
        app(prog_name="satchel")
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if isinstance(stop.code, str):
            typer.echo(stop.code, err=True)
    from satchel.runtime.lifecycle import exit_now

    exit_now(code)
