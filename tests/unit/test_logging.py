"""One JSON event per line on stdout, for Satchel's own events and every library's."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from satchel.runtime.logging import configure_logging, get_logger

LIBRARY_LOGGERS = ("gunicorn.error", "gunicorn.access", "uvicorn", "uvicorn.error", "uvicorn.access", "celery")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put logging and structlog back as they were, so other tests see no trace of this one."""
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    saved_libs = {name: logging.getLogger(name) for name in LIBRARY_LOGGERS}
    saved_lib_state = {name: (lg.handlers[:], lg.propagate, lg.disabled) for name, lg in saved_libs.items()}
    saved_structlog = structlog.get_config()
    yield
    logging.captureWarnings(False)
    root.handlers[:], level = saved_root
    root.setLevel(level)
    for name, lg in saved_libs.items():
        lg.handlers[:], lg.propagate, lg.disabled = saved_lib_state[name]
    structlog.configure(**saved_structlog)


def json_lines(capfd: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    out = capfd.readouterr().out
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def assert_common_keys(event: dict[str, Any]) -> None:
    assert {"timestamp", "level", "event"} <= event.keys()
    assert event["process"] == "web"
    assert event["release"] == "r1"


def test_a_structlog_event_is_one_json_line(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging(process="web", release="r1")
    capfd.readouterr()
    get_logger("satchel.test").info("upload.completed", size=42)
    [event] = json_lines(capfd)
    assert_common_keys(event)
    assert event["event"] == "upload.completed"
    assert event["level"] == "info"
    assert event["size"] == 42


def test_a_stdlib_library_log_is_one_json_line(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging(process="web", release="r1")
    capfd.readouterr()
    logging.getLogger("gunicorn.error").info("x")
    [event] = json_lines(capfd)
    assert_common_keys(event)
    assert event["event"] == "x"
    assert event["level"] == "info"


def test_keys_naming_secrets_are_redacted(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging(process="web", release="r1")
    capfd.readouterr()
    get_logger("satchel.test").info("login", password="hunter2", client_secret="abc", api_token="t0k", user="ann")
    logging.getLogger("celery").warning("library", extra={"db_password": "pw"})
    structured, library = json_lines(capfd)
    assert structured["password"] == structured["client_secret"] == structured["api_token"] == "********"
    assert structured["user"] == "ann"
    assert library["db_password"] == "********"


def test_bound_context_variables_are_added(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging(process="web", release="r1")
    capfd.readouterr()
    with structlog.contextvars.bound_contextvars(request_id="abc"):
        get_logger("satchel.test").info("request.started")
        logging.getLogger("uvicorn.error").info("inside")
    get_logger("satchel.test").info("request.after")
    inside, library, after = json_lines(capfd)
    assert inside["request_id"] == "abc"
    assert library["request_id"] == "abc"
    assert "request_id" not in after


def test_share_tokens_never_reach_the_access_log() -> None:
    from satchel.web.middleware import loggable_path

    assert loggable_path("/s/Abc123-secret/files/f1") == "/s/{token}/files/f1"
    assert loggable_path("/s/Abc123-secret") == "/s/{token}"
    assert loggable_path("/shares/12") == "/shares/12"
