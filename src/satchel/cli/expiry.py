"""``satchel purge-expired``: the expiry sweep as a one-off command (for cron)."""

from __future__ import annotations

from typing import Annotated

import typer

from satchel.cli.context import run_use_case


def purge_expired(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would go, remove nothing.")] = False,
) -> None:
    """Deal with ended shares (the files their owners asked to remove go, the records stay as history for
    SATCHEL_SHARE_HISTORY_DAYS) and drop the records older than that (for cron)."""
    from satchel.runtime.progress import reporter

    with reporter("purge-expired") as progress:
        report = run_use_case(lambda s: s.expiry.purge_expired(dry_run=dry_run, progress=progress))
    from satchel.runtime.logging import get_logger

    get_logger("satchel.expiry").info(
        "purge.done",
        dry_run=dry_run,
        shares=len(report.shares),
        files=len(report.files),
        freed_bytes=report.freed_bytes,
        uploads=report.uploads,
        history=len(report.history),
    )
