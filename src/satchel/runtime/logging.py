"""One JSON event per line on stdout, for every process and every library (factor XI).

Satchel's own code logs named events through structlog (``log.info("upload.completed",
size=...)``); the stdlib loggers of Gunicorn, Uvicorn and Celery are routed through the
same formatter, so an operator's log pipeline sees one shape everywhere. Nothing is
ever written to a file.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
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


# Secrets that travel inside text (messages, exception text, a mail's body), whatever the key:
# URL credentials, share, invitation and password reset links (their token is their key), API tokens, bearer
# credentials, and ``password=…``-style pairs. Each keeps enough around it to read the line.
_SECRET_TEXT = re.compile(
    # possessive quantifiers and the look-behind keep this linear on hostile text (a 64 KiB path)
    r"(?P<url>(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*+://[^\s/@:]*+:)[^\s/@]++@"
    r"|(?P<share>/s/)[A-Za-z0-9_-]++"
    r"|(?P<invite>/invite/)[A-Za-z0-9_-]++"
    r"|(?P<reset>/password-resets?+/)[A-Za-z0-9_-]++"
    r"|(?P<api>\bsat_)[A-Za-z0-9_-]++"
    r"|(?P<bearer>\b[Bb]earer\s++)[^\s,;\"']++"
    r"|(?P<pair>(?i:password|passwd|secret|token|api[_-]?key|session|cookie)[\w-]{0,64}+[\"']?\s*+[:=]\s*+[\"']?)"
    r"[^\s\"'&,;)}\]]++"
)
_MASKS = {
    "url": "{}***@",
    "share": "{}{{token}}",
    "invite": "{}{{token}}",
    "reset": "{}{{token}}",
    "api": "{}***",
    "bearer": "{}***",
    "pair": "{}***",
}


def _mask(match: re.Match[str]) -> str:
    group = match.lastgroup or "pair"
    return _MASKS[group].format(match.group(group))


def mask_secrets(text: str) -> str:
    """``text`` with every secret Satchel knows the shape of replaced, safe to log or print."""
    # Every shape above needs one of these; most values have none, and this costs far less than the scan.
    if (
        ":" in text
        or "=" in text
        or "/s/" in text
        or "/invite/" in text
        or "/password-reset" in text
        or "sat_" in text
        or "earer" in text
    ):
        return _SECRET_TEXT.sub(_mask, text)
    return text


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    return value


_OWN_FIELDS = frozenset({"timestamp", "level", "logger", "process", "release", "request_id"})  # written by Satchel


def _mask_secret_text(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """The last step before rendering, after the exception is text: no secret leaves inside a value."""
    for key, value in event.items():
        if key not in _OWN_FIELDS:
            event[key] = _masked(value)
    return event


def _tidy(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    event["level"] = event.get("level", "info").lower()
    event.pop("color_message", None)  # a terminal-coloured copy of the message some libraries attach
    return event


def configure_logging(*, process: str, release: str, level: str = "INFO", fmt: str = "json") -> None:
    """Send every logger of this process to stdout through one structlog formatter."""
    bound: dict[str, Any] = {"process": process, "release": release}
    shared = _shared_processors(bound)
    handler = _stdout_handler(shared, fmt)
    _direct.update(handler=handler if fmt == "json" else None, bound=bound)
    _route_stdlib_loggers(handler, level)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def _shared_processors(bound: dict[str, Any]) -> list[Processor]:
    """The steps every event takes, Satchel's own and the libraries' alike, with ``bound`` added to each."""

    def add_process(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
        for key, value in bound.items():
            event.setdefault(key, value)
        return event

    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_process,
        _redact_secrets,
        _tidy,
    ]


def _stdout_handler(shared: list[Processor], fmt: str) -> logging.Handler:
    """The one handler: events rendered as JSON lines, or for a person at a console."""
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
            _mask_secret_text,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    return handler


def _route_stdlib_loggers(handler: logging.Handler, level: str) -> None:
    """Every stdlib logger, and Python's warnings, through ``handler`` alone."""
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


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


# The handler ``configure_logging`` installed for JSON lines, and the fields it binds: ``log_request`` writes
# to it directly. Empty until logging is configured, or when it is configured for the console.
_direct: dict[str, Any] = {}


def log_request(logger: str, event: str, **fields: Any) -> None:
    """One access-log event: the JSON line ``get_logger(logger).info(event, **fields)`` would write.

    Written straight to the JSON handler, because a line per request through the general chain (a
    structlog processor chain, a stdlib record, the formatter's own chain) cost more CPU than the rest
    of a small request's edge. Only these fields and the bound context are in it; the same keys, in the
    same order, masked the same way. Anywhere else (console format, a handler of a test), the general path.
    """
    handler: logging.StreamHandler[Any] | None = _direct.get("handler")
    root = logging.getLogger()
    if handler is None or len(root.handlers) != 1 or root.handlers[0] is not handler:
        get_logger(logger).info(event, **fields)
        return
    if not logging.getLogger(logger).isEnabledFor(logging.INFO):
        return
    line = {key: _masked(value) for key, value in fields.items()}
    line["event"] = mask_secrets(event)
    for key, value in structlog.contextvars.get_contextvars().items():
        line.setdefault(key, value)
    line["level"] = "info"
    line["logger"] = logger
    line["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    for key, value in _direct["bound"].items():
        line.setdefault(key, value)
    text = json.dumps(line) + "\n"
    handler.acquire()
    try:
        handler.stream.write(text)
        handler.flush()
    except Exception:  # as logging does: a line that cannot be written never fails the request
        handler.handleError(logging.makeLogRecord({"name": logger, "msg": event}))
    finally:
        handler.release()
