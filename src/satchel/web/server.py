"""``satchel web``: Gunicorn with Uvicorn workers, serving HTTP itself on $PORT (factor VII).

Gunicorn supervises the worker processes and handles signals; each worker runs
Uvicorn's event loop. On SIGTERM the arbiter stops accepting, every worker
marks itself draining (so ``/readyz`` answers 503), lets in-flight requests
finish within ``GRACEFUL_TIMEOUT``, and the process exits 0 (factor IX).

Hostile input is answered at the door: a request head above ``SATCHEL_MAX_HEADER_BYTES``
gets 431 before the parser holds it, and ``X-Forwarded-*`` is believed only from the
proxies ``FORWARDED_ALLOW_IPS`` names (none by default).

The arbiter loads the application once, before it forks the workers (``preload_app``): each worker
starts with the code in place and only runs the lifespan, which opens its own database and Redis pools,
so no connection is ever shared across a fork. A SIGHUP replaces the workers (new processes, new pools)
with the same code: a new release is a new process, started by the platform (factor V).

With ``SATCHEL_METRICS_PORT`` the arbiter serves ``/metrics`` on that port for every worker at once (they
write their samples to one directory, see ``runtime.metrics``), so a scrape never depends on which
worker it reaches, and a worker that dies takes none of its counts with it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from satchel import __version__
from satchel.runtime import lifecycle
from satchel.runtime.logging import get_logger
from satchel.runtime.metrics import directory
from satchel.settings import Settings

SHM = Path("/dev/shm")  # noqa: S108 (gunicorn's documented choice for worker heartbeats)
LINGER = 2.0  # seconds a refused connection is read and dropped, so the client can read its 431 before we close
log = get_logger("satchel.http")


class JsonLogger(GunicornLogger):  # type: ignore[misc]
    """Gunicorn's own messages go through Satchel's JSON handler on stdout, not to stderr files."""

    def setup(self, cfg: Any) -> None:
        self.cfg = cfg
        self.loglevel = self.LOG_LEVELS.get(cfg.loglevel.lower(), logging.INFO)
        root_handlers = list(logging.getLogger().handlers)
        for log in (self.error_log, self.access_log):
            log.handlers[:] = root_handlers
            log.propagate = False
        self.error_log.setLevel(self.loglevel)
        self._access_log_enabled = False  # requests are logged by RequestContext, with their id


class CappedHeadProtocol(HttpToolsProtocol):
    """HTTP/1.1 where a request head (request line and headers) may not exceed ``max_head_bytes``.

    The parser keeps a head's bytes until the head ends, growing without bound, so the bytes are
    counted here as they arrive, before the parser sees them, and only while a head is being read:
    the body never counts. Above the limit: 431 problem+json, ``Connection: close``, and the
    connection ends. (A pipelined head that arrives in the same read as the previous request's end
    is counted from the next read on: at most one read over.)
    """

    max_head_bytes: ClassVar[int] = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._refused = False

    def data_received(self, data: bytes) -> None:
        rest = memoryview(data)
        while rest and not self._refused and not self.transport.is_closing():
            if self._in_head:
                room = self.max_head_bytes - self._head_bytes
                if room <= 0:
                    self._refuse_head()
                    return
                piece, rest = rest[:room], rest[room:]
                self._head_bytes += len(piece)
            else:
                piece, rest = rest, rest[:0]
            super().data_received(piece)  # type: ignore[arg-type]  # the parser takes any buffer

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0

    def _refuse_head(self) -> None:
        self._refused = True
        client = self.client[0] if self.client else ""
        log.warning("http.request_head_too_large", client=client, limit=self.max_head_bytes)
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # an earlier request's answer is still being written: no room for ours
            return
        from satchel.web.problems import problem  # the arbiter imports this module: keep the app out of it

        body = bytes(problem(431, f"The request line and headers may take at most {self.max_head_bytes} bytes.").body)
        head = [STATUS_LINE[431]]
        head += [b"%s: %s\r\n" % (name, value) for name, value in self.server_state.default_headers]
        head += [
            b"content-type: application/problem+json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"x-content-type-options: nosniff\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        # Closing at once with unread bytes would reset the connection and the 431 with it: send FIN,
        # drop what still arrives for a moment (``data_received`` ignores it now), then close.
        if self.transport.can_write_eof():
            self.transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER, self.transport.close)


def head_capped(limit: int) -> type[CappedHeadProtocol]:
    """The protocol class with this server's header limit."""
    return type("CappedHeadProtocol", (CappedHeadProtocol,), {"max_head_bytes": limit})


class DrainingServer(Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        lifecycle.begin_draining()
        super().handle_exit(sig, frame)


class SatchelWorker(UvicornWorker):  # type: ignore[misc]
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": "auto",
        "http": "auto",
        "ws": "none",  # no WebSocket route: nothing of a WebSocket implementation to import
        "access_log": False,
        "server_header": False,
        "date_header": True,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings: Settings = self.app.settings
        # Leave a second for the lifespan shutdown before the arbiter's hard kill.
        self.config.timeout_graceful_shutdown = max(1, self.cfg.graceful_timeout - 1)
        self.config.http = head_capped(settings.max_header_bytes)
        # Uvicorn rewrites the client address from X-Forwarded-For for the proxies it trusts. Trust
        # exactly the ones Gunicorn was given (FORWARDED_ALLOW_IPS; none by default), and with none,
        # leave the headers unread: a client's own X-Forwarded-For must not pick its rate-limit key.
        trusted = list(self.cfg.forwarded_allow_ips)
        self.config.forwarded_allow_ips = trusted
        self.config.proxy_headers = bool(trusted)

    def run(self) -> None:
        super().run()
        lifecycle.exit_now(0)  # skip interpreter teardown: see lifecycle.exit_now

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = DrainingServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            raise SystemExit(3)  # gunicorn's WORKER_BOOT_ERROR: stops the arbiter instead of looping


class MetricsHooks:
    """Gunicorn's server hooks for metrics: the arbiter serves them, its workers never hold that socket,
    and a dead worker's live gauges go with it while its counters stay."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server: Any = None

    def when_ready(self, arbiter: Any) -> None:
        port = self.settings.metrics_port
        if port is None:
            return
        from satchel.runtime.metrics import exposition  # only now: the multiprocess directory is chosen

        registry = exposition.scrape_registry(exposition.BuildInfo(self.settings.release_id, __version__))
        try:
            self.server = exposition.serve(port, registry)
        except OSError as exc:
            log.error("metrics.port_unavailable", port=port, error=str(exc))
            arbiter.halt(f"SATCHEL_METRICS_PORT {port} is unavailable", 1)

    def post_fork(self, arbiter: Any, worker: Any) -> None:
        if self.server is not None:
            self.server.socket.close()  # the child's copy only: the arbiter keeps serving

    def child_exit(self, arbiter: Any, worker: Any) -> None:
        directory.mark_dead(worker.pid)


class WebServer(BaseApplication):  # type: ignore[misc]
    """Gunicorn configured from Satchel's settings, no config file."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Once: a reload (SIGHUP) loads the config again, and new hooks would forget the metrics server.
        self.metrics_hooks = MetricsHooks(settings)
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        hooks = self.metrics_hooks
        options: dict[str, Any] = {
            "bind": [f"0.0.0.0:{s.port}"],
            "workers": s.web_concurrency,
            "worker_class": f"{__name__}.SatchelWorker",
            "logger_class": f"{__name__}.JsonLogger",
            "graceful_timeout": s.graceful_timeout,
            "timeout": 30,
            "keepalive": 5,
            "loglevel": s.log_level.lower(),
            "accesslog": None,
            "errorlog": "-",
            "proc_name": "satchel-web",
            # Explicit, so Gunicorn's own default (127.0.0.1, or the variable read behind our back) never applies.
            "forwarded_allow_ips": s.forwarded_allow_ips,
            "control_socket_disable": True,
            "preload_app": True,
            # heartbeat files in memory, so a read-only or slow disk never stalls a worker
            "worker_tmp_dir": str(SHM) if SHM.is_dir() else None,
            "when_ready": _when_ready(hooks),
            "post_fork": hooks.post_fork,
            "child_exit": hooks.child_exit,
        }
        for key, value in options.items():
            if value is not None:
                self.cfg.set(key, value)

    def load(self) -> Any:
        """The application, in the arbiter (``preload_app``): the workers fork with it loaded."""
        from satchel.web.app import create_app

        app = create_app(self.settings)
        _load_what_workers_import()
        return app


def _load_what_workers_import() -> None:
    """What a Uvicorn worker imports as it starts (its event loop, the lifespan), once here instead of in each."""
    from uvicorn.config import LIFESPAN, LOOP_FACTORIES
    from uvicorn.importer import import_from_string

    import_from_string(LIFESPAN["auto"])
    if loop_factory := LOOP_FACTORIES.get(SatchelWorker.CONFIG_KWARGS["loop"]):
        import_from_string(loop_factory)()


def _when_ready(metrics: MetricsHooks) -> Any:
    def when_ready(arbiter: Any) -> None:
        metrics.when_ready(arbiter)
        lifecycle.share_with_forks()  # the workers fork next

    return when_ready


def serve(settings: Settings) -> None:
    WebServer(settings).run()
