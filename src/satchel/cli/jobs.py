"""``satchel jobs …``: inspect the job queue and prove it runs end to end."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated

import typer

from satchel.cli.context import process_settings, run_use_case

if TYPE_CHECKING:
    from satchel.settings import Settings

app = typer.Typer(help="Inspect and exercise the job queue.", no_args_is_help=True)


@app.command("ping")
def ping(
    delay: Annotated[float, typer.Option(help="Seconds the job sleeps before finishing.")] = 0.0,
    wait: Annotated[float, typer.Option(help="Seconds to wait for a worker to finish it; 0 = don't wait.")] = 30.0,
) -> None:
    """Put a ping job in the outbox and wait for a worker to run it: proves relay, broker and workers."""
    settings = process_settings("admin")
    job_id = run_use_case(lambda s: s.jobs.enqueue("ping", {"delay": delay}, queue="default"), settings)
    typer.echo(json.dumps({"job_id": job_id, "status": "pending"}))
    if wait <= 0:
        return
    marker = _ping_marker(settings, job_id, wait)
    if marker is None:
        typer.echo(f"satchel jobs ping: no worker finished job {job_id} within {wait:g}s", err=True)
        raise typer.Exit(1)
    typer.echo(marker)


def _ping_marker(settings: Settings, job_id: str, wait: float) -> str | None:
    """The marker a worker leaves in Redis when it has run the ping job, or None if none came within ``wait``."""
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
            return marker if isinstance(marker, str) else marker.decode()
        time.sleep(0.1)
    return None


@app.command("list")
def list_jobs(
    failed: Annotated[bool, typer.Option("--failed", help="Only jobs that failed for good.")] = False,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
) -> None:
    """Recent jobs with their state, attempts and last error."""
    for job in run_use_case(lambda s: s.jobs.recent(status="failed" if failed else None, limit=limit)):
        error = (job.last_error or "").splitlines()[0][:100] if job.last_error else ""
        typer.echo(f"{job.id}\t{job.kind}\t{job.queue}\t{job.status}\t{job.attempts}/{job.max_attempts}\t{error}")


@app.command("retry")
def retry(job_id: str) -> None:
    """Run a failed job again, with a fresh set of attempts."""
    run_use_case(lambda s: s.jobs.retry(job_id))
    typer.echo(f"job {job_id} is pending again")
