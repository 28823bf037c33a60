"""The relay's SQL and the domain's job rule say the same thing about every state a job can be in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from satchel.adapters.db.schema import jobs
from satchel.domain.jobs import Job

from support.app import App

REPUBLISH_AFTER = timedelta(minutes=5)
STATES = ("pending", "published", "running", "done", "failed")


def test_the_relay_takes_exactly_the_pending_jobs_the_domain_says_may_start_and_the_stale_published_ones(
    app: App,
) -> None:
    now = datetime.now(UTC)
    rows = []
    for status in STATES:
        for available, published in (
            (now - timedelta(seconds=5), now - 2 * REPUBLISH_AFTER),
            (now + timedelta(hours=1), now),
        ):
            rows.append(
                dict(
                    id=f"rule-{status}-{len(rows)}",
                    kind="ping",
                    queue="rules",
                    payload={},
                    status=status,
                    attempts=1,
                    max_attempts=5,
                    available_at=available,
                    published_at=published,
                    started_at=None,
                    finished_at=None,
                    last_error=None,
                    created_at=now,
                )
            )

    async def taken() -> set[str]:
        async with app.services.database.engine.begin() as conn:
            await conn.execute(sa.insert(jobs), rows)
        try:
            async with app.services.job_queue.due(limit=1000, republish_after=REPUBLISH_AFTER) as batch:
                return {job.id for job in batch.jobs if job.queue == "rules"}
        finally:  # no other test's relay may find these
            async with app.services.database.engine.begin() as conn:
                await conn.execute(sa.delete(jobs).where(jobs.c.queue == "rules"))

    expected = set()
    for row in rows:
        job = Job(**row)
        if job.status == "pending" and job.may_start(now):
            expected.add(job.id)
        if job.status == "published" and job.published_at is not None and job.published_at < now - REPUBLISH_AFTER:
            expected.add(job.id)
    assert app.call(taken) == expected
    assert expected == {"rule-pending-0", "rule-published-2"}
