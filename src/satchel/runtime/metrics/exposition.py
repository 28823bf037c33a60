"""Answering a scrape: every process's samples added up, in the format the scraper asks for.

In multiprocess mode (``directory``) a scrape reads every process's files, so any process of the tree
(the Gunicorn arbiter, a web worker, the Celery main process) answers for all of them; otherwise it
answers for itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from satchel.runtime.logging import get_logger
from satchel.runtime.metrics import directory

log = get_logger("satchel.metrics")


class BuildInfo:
    """``satchel_build_info{release, version} 1``: which release answers, for joins and dashboards."""

    def __init__(self, release: str, version: str) -> None:
        self.release = release
        self.version = version

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "satchel_build_info", "The release and version of Satchel answering; 1.", labels=["release", "version"]
        )
        info.add_metric([self.release, self.version], 1)
        yield info


class _AllProcesses:
    """Every process's files, once the live gauges of dead processes are dropped."""

    def __init__(self, path: str) -> None:
        self._files = MultiProcessCollector(None, path)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterator[Metric]:
        directory.forget_dead_processes()
        yield from self._files.collect()  # type: ignore[no-untyped-call]


def scrape_registry(*extra: Collector) -> CollectorRegistry:
    """What a scrape shows: the samples of every process of this tree (or this process's alone), and ``extra``."""
    registry = CollectorRegistry()
    path = os.environ.get(directory.ENV)
    registry.register(_AllProcesses(path) if path else REGISTRY)
    for collector in extra:
        registry.register(collector)
    return registry


def render(registry: CollectorRegistry, accept: str) -> tuple[bytes, str]:
    """The scrape's body and content type, in the exposition format ``accept`` prefers."""
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type


def serve(port: int, registry: CollectorRegistry) -> WSGIServer:
    """Serve ``registry`` on ``port`` from a daemon thread of this process; the server, to close in forked children."""
    server, _ = start_http_server(port, addr="0.0.0.0", registry=registry)  # noqa: S104 (scraped from other hosts)
    log.info("metrics.serving", port=port, directory=os.environ.get(directory.ENV))
    return server
