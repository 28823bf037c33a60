"""The process types (``web``, ``worker``), the release step (``migrate``) and ``dev``, which runs them all locally."""

from __future__ import annotations

from typing import Annotated

import typer

from satchel.cli.context import process_settings


def dev() -> None:
    """Start everything locally: embedded PostgreSQL and Redis, migrations, web and worker."""
    try:
        from satchel.cli.dev import run_dev
    except ImportError as exc:  # a production install (the image) has no embedded servers
        typer.echo(
            f"satchel dev: the embedded servers are development dependencies ({exc.name} is missing); "
            "run it from a checkout with: python3 tasks.py dev",
            err=True,
        )
        raise typer.Exit(2) from None

    raise typer.Exit(run_dev())


def web() -> None:
    """Serve HTTP on 0.0.0.0:$PORT (Gunicorn with Uvicorn workers)."""
    from satchel.runtime.lifecycle import defer_collection

    defer_collection()  # until the workers fork: see runtime.lifecycle
    settings = process_settings("web")
    from satchel.runtime.metrics.directory import multiprocess_dir

    with multiprocess_dir(enabled=settings.metrics_port is not None or settings.metrics_token is not None):
        from satchel.web.server import serve

        serve(settings)


def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated queues to consume.")] = "default,mail,scan,media",
    concurrency: Annotated[int | None, typer.Option(help="Job processes (default SATCHEL_WORKER_CONCURRENCY).")] = None,
    relay: Annotated[bool, typer.Option(help="Also relay the outbox and run the expiry sweep.")] = True,
) -> None:
    """Run background jobs from BROKER_URL until SIGTERM, which lets running jobs finish."""
    from satchel.runtime.lifecycle import defer_collection

    defer_collection()  # until the relay and the pool fork: see runtime.lifecycle
    settings = process_settings("worker")
    from satchel.runtime.metrics.directory import multiprocess_dir

    with multiprocess_dir(enabled=settings.metrics_port is not None):
        from satchel.worker.app import run_worker

        chosen = _known_queues(queues)
        code = run_worker(settings, queues=chosen, concurrency=concurrency or settings.worker_concurrency, relay=relay)
    raise typer.Exit(code)


def _known_queues(queues: str) -> list[str]:
    """The queues named on the command line, or exit 2 naming the unknown ones."""
    from satchel.adapters.jobs import QUEUES

    chosen = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(chosen) - set(QUEUES))
    if unknown or not chosen:
        typer.echo(f"satchel worker: unknown queue(s) {', '.join(unknown)}; known: {', '.join(QUEUES)}", err=True)
        raise typer.Exit(2)
    return chosen


def migrate() -> None:
    """Apply database migrations: the release step, run once per release."""
    settings = process_settings("migrate")
    from satchel.adapters.db.migrate import MigrationBlocked, UnknownSchema
    from satchel.adapters.db.migrate import migrate as run_migrations
    from satchel.adapters.db.revisions import head
    from satchel.runtime.logging import get_logger

    try:
        before, after = run_migrations(
            settings.database_url, settings.release_id, lock_timeout=settings.migration_lock_timeout
        )
    except UnknownSchema as exc:
        typer.echo(f"satchel migrate: {exc}", err=True)
        raise typer.Exit(1) from None
    except MigrationBlocked as exc:
        typer.echo(f"satchel migrate: {exc}", err=True)
        raise typer.Exit(75) from None  # sysexits.h EX_TEMPFAIL: try again later
    log = get_logger("satchel.migrate")
    if after != head():
        log.warning("migrate.schema_ahead", schema=after, release_knows_up_to=head())
    log.info("migrate.done", schema_before=before, schema_after=after)
