"""``satchel audit …``: read the audit trail, and prune what is older than an operator keeps."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from satchel.cli.context import run_use_case

app = typer.Typer(help="Read and prune the audit trail.", no_args_is_help=True)


def _moment(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 date or time; without a zone it is UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 date or time: {value!r}", param_hint=option) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command("list")
def list_events(
    action: Annotated[str | None, typer.Option(help="Only this action, like file.uploaded.")] = None,
    user: Annotated[str | None, typer.Option(help="Only what this email address did.")] = None,
    subject: Annotated[str | None, typer.Option(help="Only what was done to this file, share, user or job id.")] = None,
    since: Annotated[str | None, typer.Option(help="From this ISO 8601 date or time on (UTC without a zone).")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Audit events, newest first: time, action, who, subject, client and details."""
    from satchel.services.administration import audit_filter

    moment = _moment(since, "--since")
    events, _ = run_use_case(
        lambda s: s.administration.events(
            audit_filter(action=action, email=user, subject=subject, since=moment), limit=limit
        )
    )
    for e in events:
        if as_json:
            fields = {name: getattr(e, name) for name in ("id", "action", "actor_id", "actor_email", "subject")}
            typer.echo(json.dumps({"at": e.at.isoformat(), **fields, "client": e.client, "details": e.details}))
        else:
            details = " ".join(f"{k}={v}" for k, v in e.details.items())
            who = e.actor_email or "-"
            typer.echo(f"{e.at.isoformat()}\t{e.action}\t{who}\t{e.subject or '-'}\t{e.client or '-'}\t{details}")


@app.command("prune")
def prune(
    before: Annotated[
        str, typer.Option(help="Delete events older than this ISO 8601 date or time (UTC without a zone).")
    ],
) -> None:
    """Delete the events older than a date: the trail grows with use and is kept until pruned."""
    moment = _moment(before, "--before")
    assert moment is not None
    pruned = run_use_case(lambda s: s.administration.prune(moment))
    typer.echo(json.dumps({"pruned": pruned, "before": moment.isoformat()}))
