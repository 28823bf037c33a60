"""``satchel web``: Gunicorn with Uvicorn workers, serving HTTP itself on $PORT (factor VII).

Gunicorn supervises the worker processes and handles signals; each worker runs
Uvicorn's event loop. On SIGTERM the arbiter stops accepting, every worker
marks itself draining (so ``/readyz`` answers 503), lets in-flight requests
finish within ``GRACEFUL_TIMEOUT``, and the process exits 0 (factor IX).
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from satchel.runtime import lifecycle
from satchel.settings import Settings

SHM = Path("/dev/shm")  # noqa: S108 (gunicorn's documented choice for worker heartbeats)


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


class DrainingServer(Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        lifecycle.begin_draining()
        super().handle_exit(sig, frame)


class SatchelWorker(UvicornWorker):  # type: ignore[misc]
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": "auto",
        "http": "auto",
        "access_log": False,
        "server_header": False,
        "date_header": True,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Leave a second for the lifespan shutdown before the arbiter's hard kill.
        self.config.timeout_graceful_shutdown = max(1, self.cfg.graceful_timeout - 1)

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


class WebServer(BaseApplication):  # type: ignore[misc]
    """Gunicorn configured from Satchel's settings, no config file."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
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
            "control_socket_disable": True,
            # heartbeat files in memory, so a read-only or slow disk never stalls a worker
            "worker_tmp_dir": str(SHM) if SHM.is_dir() else None,
        }
        for key, value in options.items():
            if value is not None:
                self.cfg.set(key, value)

    def load(self) -> Any:
        from satchel.web.app import create_app

        return create_app(self.settings)


def serve(settings: Settings) -> None:
    WebServer(settings).run()
