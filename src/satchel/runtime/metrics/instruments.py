"""What Satchel measures, one definition each; every process records through these.

Labels are bounded by construction: a route is its template (``/s/{token}``), never the path a client
sent (share tokens are secrets, and paths are unbounded); a method outside HTTP's usual few is ``OTHER``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()  # type: ignore[no-untyped-call]  # a ``_created`` series per label set doubles the output and says nothing we use

UNMATCHED = "<unmatched>"  # the route of a request no route took (a 404, a probe for /wp-admin)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
JOB_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)

HTTP_REQUESTS = Counter(
    "satchel_http_requests", "HTTP requests answered, by route template and status.", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "satchel_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template.",
    ["method", "route"],
    buckets=SECONDS,
)
UPLOAD_BYTES = Counter("satchel_upload_bytes", "Request-body bytes received by the upload routes, as they arrive.")
DOWNLOAD_BYTES = Counter("satchel_download_bytes", "File bytes handed to the server by the download routes.")
JOBS = Counter(
    "satchel_jobs", "Job runs, by queue, kind and outcome (done, retrying, failed).", ["queue", "job", "outcome"]
)
JOB_DURATION = Histogram(
    "satchel_job_duration_seconds", "Time a job's work took, by queue and kind.", ["queue", "job"], buckets=JOB_SECONDS
)
# livemax: across the processes alive now, 1 if any of them has the service's breaker open.
BREAKER_OPEN = Gauge(
    "satchel_breaker_open",
    "1 while this service's circuit breaker is open or half-open in any live process, else 0.",
    ["service"],
    multiprocess_mode="livemax",
)


def route_template(scope: Mapping[str, Any]) -> str:
    """The template of the route that took the request (``/s/{token}``), never the path the client sent."""
    route = scope.get("route")
    if route is not None:
        return str(route.path_format)
    if scope.get("endpoint") is not None:  # a mounted app (static files): routing leaves its prefix in root_path
        prefix: str = scope.get("root_path", "")[len(scope.get("app_root_path", "")) :]
        return prefix + "/{path}"
    return UNMATCHED


class HttpRecorder:
    """Records one answered request; each label set is looked up once per process, then reused."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def record(self, scope: Mapping[str, Any], status: int, seconds: float) -> None:
        """``scope`` as routing left it: the matched route's template labels the request."""
        method = scope["method"]
        key = (method if method in METHODS else "OTHER", route_template(scope), status)  # made-up methods: one key
        children = self._children.get(key)
        if children is None:
            children = (HTTP_REQUESTS.labels(key[0], key[1], str(status)), HTTP_DURATION.labels(key[0], key[1]))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def record_job(queue: str, job: str, outcome: str, seconds: float) -> None:
    JOBS.labels(queue, job, outcome).inc()
    JOB_DURATION.labels(queue, job).observe(seconds)


def breaker_open(service: str, is_open: bool) -> None:
    BREAKER_OPEN.labels(service).set(1 if is_open else 0)
