"""The Celery application, configured from Satchel's settings.

Jobs are acknowledged only after they ran (``acks_late``) and handed back to
the broker when the process running them dies, so a SIGKILL loses nothing
(factor IX); one job at a time is reserved per process, so a long job never
holds others hostage.

With ``SATCHEL_METRICS_PORT`` this process serves ``/metrics`` for itself, its pool and its relay (they
write their samples to one directory, see ``runtime.metrics``); the pool's processes never hold that
socket, and one that ends takes its live gauges with it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import ssl
import threading
from multiprocessing.process import BaseProcess
from typing import Any

from celery import Celery, signals
from celery.apps import worker as celery_worker_app
from celery.utils.nodenames import default_nodename, host_format
from celery.worker import state as worker_state
from kombu import Queue

from satchel.adapters.jobs import QUEUES, CeleryJobPublisher
from satchel.adapters.redis import tls_options
from satchel.ports.jobs import JobPublisher
from satchel.runtime import lifecycle
from satchel.runtime.logging import configure_logging, get_logger
from satchel.runtime.metrics import directory
from satchel.settings import Settings

log = get_logger("satchel.worker")

# With a Redis broker an unacknowledged message is redelivered after the visibility timeout
# (SATCHEL_BROKER_VISIBILITY_TIMEOUT); keep it above the longest job. Satchel does not wait for it:
# the relay hands a dead worker's job back within SATCHEL_JOB_RECOVERY_INTERVAL.


def _broker_tls(settings: Settings) -> dict[str, Any] | None:
    """A ``rediss://`` broker's certificate is checked like Redis's (left alone, the transport would not)."""
    options = tls_options(settings.effective_broker_url, verify=settings.redis_tls_verify)
    if not options:
        return None
    return {"ssl_cert_reqs": ssl.CERT_REQUIRED if options["ssl_cert_reqs"] == "required" else ssl.CERT_NONE}


def create_celery(settings: Settings) -> Celery:
    app = Celery("satchel", include=["satchel.worker.tasks"])
    app.conf.update(
        broker_url=settings.effective_broker_url,
        broker_use_ssl=_broker_tls(settings),
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout},
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue="default",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        worker_enable_remote_control=False,
        enable_utc=True,
    )
    app.conf.satchel_settings = settings
    return app


def celery_publisher(settings: Settings) -> JobPublisher:
    """What the relay hands jobs to: a Celery client of its own, on the worker's broker."""
    return CeleryJobPublisher(create_celery(settings))


def _say_as_event(message: str, *_: Any) -> None:
    """Celery announces shutdowns with a bare print; make it a log event like every other line."""
    log.info("worker.shutdown_requested", detail=message)


def _enforce_grace(grace: float) -> None:
    """After SIGTERM, jobs get ``grace`` seconds; then a cold shutdown hands them back to the broker."""

    @signals.worker_shutting_down.connect(weak=False)
    def _start_clock(**_: Any) -> None:
        timer = threading.Timer(grace, os.kill, args=(os.getpid(), signal.SIGQUIT))
        timer.daemon = True
        timer.start()


EX_RELAY_DIED = 70  # sysexits.h EX_SOFTWARE: the worker ends because a part of it did


def _watch_relay(relay: BaseProcess, stopping: threading.Event) -> None:
    """A worker without its relay publishes nothing: when the relay dies, stop, so the supervisor restarts both.

    The shutdown is the warm one SIGTERM starts (running jobs get WORKER_GRACE), with a non-zero exit code.
    """

    def watch() -> None:
        relay.join()
        if stopping.is_set() or worker_state.should_stop is not None or worker_state.should_terminate is not None:
            return  # the worker is stopping anyway, and took the relay with it
        log.error("relay.died", exitcode=relay.exitcode, pid=relay.pid)
        signals.worker_shutting_down.send(sender="satchel-relay", sig="relay", how="Warm", exitcode=EX_RELAY_DIED)
        # What Celery's own SIGTERM handler sets (an exit code; the stubs say None), read by its event loop.
        worker_state.should_stop = EX_RELAY_DIED  # type: ignore[assignment]

    threading.Thread(target=watch, name="satchel-relay-watch", daemon=True).start()


def run_worker(settings: Settings, *, queues: list[str], concurrency: int, relay: bool = True) -> int:
    """Run a worker (and its outbox relay) in this process until SIGTERM, which lets running jobs finish.

    Returns the exit code: 0 after SIGTERM, non-zero when the worker stopped because a part of it died.
    """
    celery_worker_app.safe_say = _say_as_event  # type: ignore[attr-defined]
    try:
        metrics = _serve_metrics(settings)
    except OSError as exc:
        log.error("metrics.port_unavailable", port=settings.metrics_port, error=str(exc))
        return 1
    _enforce_grace(settings.worker_grace)
    relay_process = None
    stopping = threading.Event()
    if relay:
        relay_process = _fork_relay(metrics)
        _watch_relay(relay_process, stopping)

    @signals.setup_logging.connect(weak=False)
    def _keep_satchel_logging(**_: Any) -> None:
        configure_logging(
            process="worker", release=settings.release_id, level=settings.log_level, fmt=settings.log_format
        )

    app = create_celery(settings)
    try:
        return _start(app, settings, queues, concurrency)
    finally:
        stopping.set()
        if relay_process is not None:
            relay_process.terminate()
            relay_process.join(10)
        if metrics is not None:
            metrics.shutdown()
            metrics.server_close()


def _fork_relay(metrics: Any) -> BaseProcess:
    """The relay, forked from this process: it starts with everything already imported, where a spawned one
    would load the whole stack again beside the worker starting up. Its connections, event loop and Celery
    client are made in the child only, so nothing of it is forked into Celery's pool."""
    from satchel.worker.relay import relay_main

    parent = os.getpid()

    def run() -> None:
        if metrics is not None:
            metrics.socket.close()  # the child's copy only: this process keeps serving
        relay_main(parent, celery_publisher)

    lifecycle.share_with_forks()
    process = multiprocessing.get_context("fork").Process(target=run, name="satchel-relay", daemon=True)
    process.start()
    return process


def _serve_metrics(settings: Settings) -> Any:
    """The metrics server on SATCHEL_METRICS_PORT (None when unset), before the pool forks."""
    if settings.metrics_port is None:
        return None
    from satchel.worker.metrics import serve_metrics  # only now: the multiprocess directory is chosen

    server = serve_metrics(settings, settings.metrics_port)

    @signals.worker_process_init.connect(weak=False)
    def _let_go_of_the_port(**_: Any) -> None:
        server.socket.close()  # the pool process's copy only: the main process keeps serving

    @signals.worker_process_shutdown.connect(weak=False)
    def _forget_live_gauges(**_: Any) -> None:
        directory.mark_dead(os.getpid())

    return server


def _start(app: Celery, settings: Settings, queues: list[str], concurrency: int) -> int:
    """Run Celery's worker until it stops; returns its exit code.

    Built directly rather than through Celery's command line, whose parser and subcommands would be
    imported only to arrive at these same arguments.
    """
    worker = app.Worker(
        hostname=host_format(default_nodename("satchel-worker@%h")),
        queues=queues,
        concurrency=concurrency,
        loglevel=settings.log_level,
        without_gossip=True,
        without_mingle=True,
        quiet=True,  # no banner: stdout carries JSON events only
    )
    lifecycle.share_with_forks()  # the pool's processes fork from here
    worker.start()
    return int(worker.exitcode or 0)
