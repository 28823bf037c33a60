"""``satchel``: every process type and admin command, in the same release and environment (factor XII).

Each command imports what it runs inside its own body: a process type loads only its own stack (the web
process no Celery, the worker no web framework), and ``satchel --version`` not even the settings.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from satchel import __version__

if TYPE_CHECKING:
    from satchel.bootstrap import Services
    from satchel.settings import Settings

T = TypeVar("T")

app = typer.Typer(
    name="satchel",
    help="Self-hosted file sharing: run its processes and admin tasks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
jobs_app = typer.Typer(help="Inspect and exercise the job queue.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
users_app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")
tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")

EX_CONFIG = 78  # sysexits.h: configuration error


def _valid_settings(process: str) -> Settings:
    """Load and validate the settings, or exit with one line per problem and no traceback."""
    from satchel.settings import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        for line in exc.lines:
            typer.echo(f"satchel {process}: config error: {line}", err=True)
        raise typer.Exit(EX_CONFIG) from None


def _settings(process: str) -> Settings:
    """Valid settings, with this process's logging configured from them."""
    settings = _valid_settings(process)
    from satchel.runtime.logging import configure_logging

    configure_logging(process=process, release=settings.release_id, level=settings.log_level, fmt=settings.log_format)
    return settings


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


@app.command()
def dev() -> None:
    """Start everything locally: embedded PostgreSQL and Redis, migrations, web and worker."""
    try:
        from satchel.runtime.dev import run_dev
    except ImportError as exc:  # a production install (the image) has no embedded servers
        typer.echo(
            f"satchel dev: the embedded servers are development dependencies ({exc.name} is missing); "
            "run it from a checkout with: python3 tasks.py dev",
            err=True,
        )
        raise typer.Exit(2) from None

    raise typer.Exit(run_dev())


@app.command()
def web() -> None:
    """Serve HTTP on 0.0.0.0:$PORT (Gunicorn with Uvicorn workers)."""
    from satchel.runtime.lifecycle import defer_collection

    defer_collection()  # until the workers fork: see runtime.lifecycle
    settings = _settings("web")
    from satchel.runtime.metrics.directory import multiprocess_dir

    with multiprocess_dir(enabled=settings.metrics_port is not None or settings.metrics_token is not None):
        from satchel.web.server import serve

        serve(settings)


@app.command()
def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated queues to consume.")] = "default,mail,scan,media",
    concurrency: Annotated[int | None, typer.Option(help="Job processes (default SATCHEL_WORKER_CONCURRENCY).")] = None,
    relay: Annotated[bool, typer.Option(help="Also relay the outbox and run the expiry sweep.")] = True,
) -> None:
    """Run background jobs from BROKER_URL until SIGTERM, which lets running jobs finish."""
    from satchel.runtime.lifecycle import defer_collection

    defer_collection()  # until the relay and the pool fork: see runtime.lifecycle
    settings = _settings("worker")
    from satchel.runtime.metrics.directory import multiprocess_dir

    with multiprocess_dir(enabled=settings.metrics_port is not None):
        from satchel.adapters.jobs import QUEUES
        from satchel.worker.app import run_worker

        chosen = [q.strip() for q in queues.split(",") if q.strip()]
        unknown = sorted(set(chosen) - set(QUEUES))
        if unknown or not chosen:
            typer.echo(f"satchel worker: unknown queue(s) {', '.join(unknown)}; known: {', '.join(QUEUES)}", err=True)
            raise typer.Exit(2)
        code = run_worker(settings, queues=chosen, concurrency=concurrency or settings.worker_concurrency, relay=relay)
    raise typer.Exit(code)


@app.command()
def migrate() -> None:
    """Apply database migrations: the release step, run once per release."""
    settings = _settings("migrate")
    from satchel.adapters.db.migrate import UnknownSchema, head_revision
    from satchel.adapters.db.migrate import migrate as run_migrations
    from satchel.runtime.logging import get_logger

    try:
        before, after = run_migrations(settings.database_url, settings.release_id)
    except UnknownSchema as exc:
        typer.echo(f"satchel migrate: {exc}", err=True)
        raise typer.Exit(1) from None
    log = get_logger("satchel.migrate")
    if after != head_revision():
        log.warning("migrate.schema_ahead", schema=after, release_knows_up_to=head_revision())
    log.info("migrate.done", schema_before=before, schema_after=after)


@app.command()
def config() -> None:
    """Print the effective configuration (secrets hidden) and where each value came from."""
    settings = _valid_settings("config")
    from satchel.settings import describe

    entries = list(describe(settings))
    width = max(len(e.name) for e in entries)
    for entry in entries:
        typer.echo(f"{entry.name:<{width}}  {entry.value or '-'}  ({entry.source})")


@jobs_app.command("ping")
def jobs_ping(
    delay: Annotated[float, typer.Option(help="Seconds the job sleeps before finishing.")] = 0.0,
    wait: Annotated[float, typer.Option(help="Seconds to wait for a worker to finish it; 0 = don't wait.")] = 30.0,
) -> None:
    """Put a ping job in the outbox and wait for a worker to run it: proves relay, broker and workers."""
    settings = _settings("admin")
    job_id = _run(lambda s: s.jobs.enqueue("ping", {"delay": delay}, queue="default"), settings)
    typer.echo(json.dumps({"job_id": job_id, "status": "pending"}))
    if wait <= 0:
        return
    import redis

    from satchel.adapters.redis import tls_options
    from satchel.worker.runner import PING_KEY

    client = redis.Redis.from_url(
        settings.redis_url, **tls_options(settings.redis_url, verify=settings.redis_tls_verify)
    )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        marker = client.get(PING_KEY.format(job_id=job_id))
        if marker:
            typer.echo(marker if isinstance(marker, str) else marker.decode())
            return
        time.sleep(0.1)
    typer.echo(f"satchel jobs ping: no worker finished job {job_id} within {wait:g}s", err=True)
    raise typer.Exit(1)


@jobs_app.command("list")
def jobs_list(
    failed: Annotated[bool, typer.Option("--failed", help="Only jobs that failed for good.")] = False,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
) -> None:
    """Recent jobs with their state, attempts and last error."""
    for job in _run(lambda s: s.jobs.recent(status="failed" if failed else None, limit=limit)):
        error = (job.last_error or "").splitlines()[0][:100] if job.last_error else ""
        typer.echo(f"{job.id}\t{job.kind}\t{job.queue}\t{job.status}\t{job.attempts}/{job.max_attempts}\t{error}")


@jobs_app.command("retry")
def jobs_retry(job_id: str) -> None:
    """Run a failed job again, with a fresh set of attempts."""
    _run(lambda s: s.jobs.retry(job_id))
    typer.echo(f"job {job_id} is pending again")


@app.command("purge-expired")
def purge_expired(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would go, remove nothing.")] = False,
) -> None:
    """Remove ended shares, and the files their owners asked to remove with them (for cron)."""
    from satchel.runtime.progress import reporter

    with reporter("purge-expired") as progress:
        report = _run(lambda s: s.expiry.purge_expired(dry_run=dry_run, progress=progress))
    from satchel.runtime.logging import get_logger

    get_logger("satchel.expiry").info(
        "purge.done",
        dry_run=dry_run,
        shares=len(report.shares),
        files=len(report.files),
        freed_bytes=report.freed_bytes,
        uploads=report.uploads,
    )


def _run(work: Callable[[Services], Awaitable[T]], settings: Settings | None = None) -> T:
    """Run one use case against the backing services, then close them: a one-off admin process."""
    settings = settings or _settings("admin")
    import asyncio

    from satchel.bootstrap import open_services
    from satchel.domain.errors import DomainError

    async def session() -> T:
        services = open_services(settings)
        try:
            return await work(services)
        finally:
            await services.close()

    try:
        return asyncio.run(session())
    except DomainError as exc:
        typer.echo(f"satchel: {exc.message}", err=True)
        raise typer.Exit(1) from None


@users_app.command("create")
def users_create(
    email: str,
    admin: Annotated[bool, typer.Option("--admin", help="Make the account an administrator.")] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
) -> None:
    """Create an account (works even when sign-up is switched off)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = _run(lambda s: s.accounts.create_user(email, password, is_admin=admin))
    typer.echo(f"created {user.email} (id {user.id}{', admin' if user.is_admin else ''})")


@users_app.command("list")
def users_list() -> None:
    """Every account, with role, state and storage used."""
    for user in _run(lambda s: s.accounts.users()):
        role = "admin" if user.is_admin else "user"
        state = "disabled" if user.disabled else "active"
        typer.echo(f"{user.id}\t{user.email}\t{role}\t{state}\t{user.used_bytes}/{user.quota_bytes} bytes")


@users_app.command("disable")
def users_disable(email: str) -> None:
    """Disable an account: it can no longer sign in, use its tokens or its shares' owner pages."""
    user = _run(lambda s: s.accounts.set_disabled(email, True))
    typer.echo(f"disabled {user.email}")


@users_app.command("enable")
def users_enable(email: str) -> None:
    """Enable a disabled account again."""
    user = _run(lambda s: s.accounts.set_disabled(email, False))
    typer.echo(f"enabled {user.email}")


@tokens_app.command("create")
def tokens_create(email: str, name: Annotated[str, typer.Option(help="What the token is for.")] = "automation") -> None:
    """Print a new API token for an account (shown once), for scripts and CI."""
    new = _run(lambda s: s.accounts.token_for(email, name))
    typer.echo(new.secret)


storage_app = typer.Typer(help="Check the object store against the database.", no_args_is_help=True)
app.add_typer(storage_app, name="storage")


@storage_app.command("verify")
def storage_verify(
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
        report = _run(
            lambda s: s.storage_check.verify(deep=deep, fix=fix, grace=timedelta(seconds=grace), progress=progress)
        )
    from satchel.runtime.logging import get_logger

    get_logger("satchel.storage").info(
        "storage.verified", checked=report.checked, orphans=report.orphans, interrupted=report.interrupted,
        missing=report.missing, mismatched=report.mismatched, removed=report.removed,
    )  # fmt: skip
    unresolved = report.missing or report.mismatched or ((report.orphans or report.interrupted) and not fix)
    if unresolved:
        raise typer.Exit(1)


@app.command()
def shell() -> None:
    """A Python prompt with `settings`, `services` and `run(coroutine)`, in this release and environment."""
    import asyncio
    import code

    settings = _settings("admin")
    from satchel.bootstrap import open_services

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    services = open_services(settings, pooled=False)
    banner = (
        f"Satchel {__version__} (release {settings.release_id}) shell\n"
        "  settings, services      e.g. run(services.accounts.users())\n"
        "  run(coroutine)          runs it to completion and returns its result"
    )
    try:
        code.interact(banner=banner, local={"settings": settings, "services": services, "run": loop.run_until_complete})
    finally:
        loop.run_until_complete(services.close())
        loop.close()


def main() -> None:
    try:
        app(prog_name="satchel")
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if isinstance(stop.code, str):
            typer.echo(stop.code, err=True)
    from satchel.runtime.lifecycle import exit_now

    exit_now(code)


if __name__ == "__main__":
    main()
