"""Background jobs: the life of one unit of work recorded in the outbox, and the rules it lives by.

A job is written ``pending`` with the change that caused it, ``published`` once the relay handed it to the
broker, ``running`` while a worker holds it, then ``done``; a failure sends it back to ``pending`` after a
growing wait, until its attempts run out and it is parked as ``failed`` for an operator to retry.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

JobStatus = Literal["pending", "published", "running", "done", "failed"]
PENDING: Final = "pending"
PUBLISHED: Final = "published"
RUNNING: Final = "running"
DONE: Final = "done"
FAILED: Final = "failed"

# A delivery may run a job in these states; running too, since it means an earlier worker died holding it.
RUNNABLE: Final[frozenset[str]] = frozenset({PENDING, PUBLISHED, RUNNING})
UNFINISHED: Final[tuple[str, ...]] = (PENDING, PUBLISHED)  # in the outbox, not yet started by any worker


def backoff(attempt: int, *, base: float = 2.0, cap: float = 600.0) -> timedelta:
    """How long a job waits after its ``attempt``-th failure: ~2 s, 4 s, 8 s … up to ten minutes, jittered
    so that jobs which failed together do not all come back together."""
    delay = min(cap, base * 2 ** (attempt - 1))
    return timedelta(seconds=delay * random.uniform(0.8, 1.2))


@dataclass
class Job:
    """A unit of background work, recorded in the outbox with the change that caused it."""

    id: str
    kind: str
    queue: str
    payload: dict[str, Any]
    status: str
    attempts: int
    max_attempts: int
    available_at: datetime
    published_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    last_error: str | None
    created_at: datetime

    def may_start(self, now: datetime) -> bool:
        """Whether a delivery arriving ``now`` may run the job: not finished, and not waiting out a backoff."""
        if self.status not in RUNNABLE:
            return False
        return not (self.status == PENDING and self.available_at > now)

    @property
    def out_of_attempts(self) -> bool:
        """After a failure of the attempt counted last: park it rather than try again."""
        return self.attempts >= self.max_attempts
