"""One JSON event per line on stdout, for every process and every library (factor XI).

Satchel's own code logs named events through structlog (``log.info("upload.completed",
size=...)``); the stdlib loggers of Gunicorn, Uvicorn and Celery are routed through the
same formatter, so an operator's log pipeline sees one shape everywhere. Nothing is
ever written to a file.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

_SECRET_KEYS = ("password", "secret", "token", "authorization", "cookie", "api_key", "private_key", "credential")


def _redact_secrets(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """A log line never carries a secret, whoever passed it in."""
    for key in event:
        if any(word in key.lower() for word in _SECRET_KEYS):
            event[key] = "********"
    return event


def _tidy(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    event["level"] = event.get("level", "info").lower()
    event.pop("color_message", None)  # a terminal-coloured copy of the message some libraries attach
    return event


def configure_logging(*, process: str, release: str, level: str = "INFO", fmt: str = "json") -> None:
    """Send every logger of this process to stdout through one structlog formatter."""
    bound: dict[str, Any] = {"process": process, "release": release}

    def add_process(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
        for key, value in bound.items():
            event.setdefault(key, value)
        return event

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_process,
        _redact_secrets,
        _tidy,
    ]
    renderer: Processor
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    else:
        renderer = structlog.processors.JSONRenderer()

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)

    logging.captureWarnings(True)  # library warnings become log events too, not stray stderr text
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries that install their own handlers are folded into the root one.
    for name in ("gunicorn.error", "gunicorn.access", "uvicorn", "uvicorn.error", "uvicorn.access", "celery"):
        lib = logging.getLogger(name)
        lib.handlers[:] = []
        lib.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # Satchel logs requests itself, with their id
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
