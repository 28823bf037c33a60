"""``satchel storage …``: check the object store against the database, and clean up after crashes."""

from __future__ import annotations

from typing import Annotated

import typer

from satchel.cli.context import run_use_case

app = typer.Typer(help="Check the object store against the database.", no_args_is_help=True)


@app.command("verify")
def verify(
    fix: Annotated[
        bool, typer.Option("--fix", help="Delete orphaned objects and interrupted uploads older than --grace.")
    ] = False,
    deep: Annotated[bool, typer.Option("--deep", help="Also recompute every file's SHA-256.")] = False,
    grace: Annotated[
        float, typer.Option(help="Seconds before unclaimed bytes count as orphaned (writes may be in flight).", min=0)
    ] = 3600,
) -> None:
    """Orphaned objects, interrupted uploads' staged bytes, files whose bytes are missing, size and (--deep)
    checksum mismatches."""
    from datetime import timedelta

    from satchel.runtime.progress import reporter

    with reporter("verify") as progress:
        report = run_use_case(
            lambda s: s.storage_check.verify(deep=deep, fix=fix, grace=timedelta(seconds=grace), progress=progress)
        )
    from satchel.runtime.logging import get_logger

    get_logger("satchel.storage").info(
        "storage.verified",
        checked=report.checked,
        orphans=report.orphans,
        interrupted=report.interrupted,
        missing=report.missing,
        mismatched=report.mismatched,
        removed=report.removed,
    )
    unresolved = report.missing or report.mismatched or ((report.orphans or report.interrupted) and not fix)
    if unresolved:
        raise typer.Exit(1)
