"""What ``satchel worker`` shows on ``SATCHEL_METRICS_PORT``: the jobs every process of its pool ran, their
breakers, and the outbox as PostgreSQL sees it at scrape time.

The outbox counts (``ports.OutboxCensus``: one grouped count over the jobs not yet started) are read when
Prometheus asks and given at most ``BACKLOG_TIMEOUT`` seconds: a database that does not answer leaves the two series out
of that scrape (and says so in the log), it never holds the scrape up. Every worker reports the same
database-wide numbers; aggregate them with ``max``, not ``sum``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from satchel import __version__
from satchel.adapters.jobs import QUEUES
from satchel.bootstrap import open_outbox_census
from satchel.ports.jobs import QueueBacklog
from satchel.runtime.logging import get_logger
from satchel.runtime.metrics import exposition
from satchel.settings import Settings

T = TypeVar("T")
BACKLOG_TIMEOUT = 2.0  # seconds; well inside Prometheus's default 10 s scrape timeout

log = get_logger("satchel.metrics")


class OutboxBacklog:
    """``satchel_jobs_outbox_backlog{queue}``: due jobs the relay has not handed to the broker yet;
    ``satchel_jobs_waiting{queue}``: jobs handed over that no worker has started."""

    def __init__(self, database_url: str, timeout: float = BACKLOG_TIMEOUT) -> None:
        self.timeout = timeout
        self._census = open_outbox_census(database_url, timeout)
        self._counting = threading.Lock()  # at most one count in flight: stalled ones never pile up

    def collect(self) -> Iterator[Metric]:
        if not self._counting.acquire(blocking=False):
            log.warning("metrics.backlog_unavailable", error="Busy", detail="the previous count has not answered yet")
            return
        try:
            counts = _within(self.timeout, self._count_then_release)
        except Exception as exc:
            log.warning("metrics.backlog_unavailable", error=type(exc).__name__, detail=str(exc)[:300])
            return
        backlog = GaugeMetricFamily(
            "satchel_jobs_outbox_backlog", "Due jobs not yet handed to the broker, by queue.", labels=["queue"]
        )
        waiting = GaugeMetricFamily(
            "satchel_jobs_waiting", "Jobs handed to the broker that no worker has started, by queue.", labels=["queue"]
        )
        for queue in sorted({*QUEUES, *counts}):
            counted = counts.get(queue, QueueBacklog(0, 0))
            backlog.add_metric([queue], counted.due)
            waiting.add_metric([queue], counted.waiting)
        yield backlog
        yield waiting

    def _count_then_release(self) -> dict[str, QueueBacklog]:
        try:
            return self._census.count()
        finally:
            self._counting.release()  # by the thread that counted, however long it took


def _within(seconds: float, work: Callable[[], T]) -> T:
    """``work()``'s result, or TimeoutError after ``seconds``: a stalled call is left behind, never waited for."""
    outcome: list[Any] = []
    finished = threading.Event()

    def run() -> None:
        try:
            outcome.append((True, work()))
        except Exception as exc:
            outcome.append((False, exc))
        finally:
            finished.set()

    threading.Thread(target=run, name="satchel-metrics-backlog", daemon=True).start()
    if not finished.wait(seconds):
        raise TimeoutError(f"no answer within {seconds:g}s")
    succeeded, value = outcome[0]
    if not succeeded:
        raise value
    result: T = value
    return result


def serve_metrics(settings: Settings, port: int) -> Any:
    """Serve this worker's metrics (its own process, its pool's and its relay's) on ``port``; the server."""
    registry = exposition.scrape_registry(
        exposition.BuildInfo(settings.release_id, __version__), OutboxBacklog(settings.database_url)
    )
    return exposition.serve(port, registry)
