"""One JSON event per line on stdout, for Satchel's own events and every library's."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
import structlog

from satchel.adapters.mail import ConsoleMailer
from satchel.domain.notifications import invitation, share_invitation
from satchel.ports.mail import Message
from satchel.runtime.logging import configure_logging, get_logger, mask_secrets

pytestmark = pytest.mark.usefixtures("restore_logging")


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


def test_the_access_log_path_of_a_share_or_an_upload_link_names_no_token() -> None:
    from satchel.web.middleware import loggable_path

    assert loggable_path("/s/Abc123-secret/files/f1") == "/s/{token}/files/f1"
    assert loggable_path("/s/Abc123-secret") == "/s/{token}"
    assert loggable_path("/r/Abc123-secret/uploads/0f") == "/r/{token}/uploads/0f"
    assert loggable_path("/requests/12") == "/requests/12"
    assert loggable_path("/shares/12") == "/shares/12"
    assert loggable_path("/previews/abc.s1.1700000000.c2lnbmVk") == "/previews/{pass}", "a pass is a key too"


def test_the_access_log_path_of_an_invitation_names_no_token() -> None:
    from satchel.web.middleware import loggable_path

    assert loggable_path(f"/invite/{INVITATION_TOKEN}") == "/invite/{token}"
    assert loggable_path("/admin/invitations/12/resend") == "/admin/invitations/12/resend"


SHARE_TOKEN = "Zq3vN8-xK2_pL5mR7tW9yB4cD6fH1jA0"
INVITATION_TOKEN = "Hq7-2bXw_Kp9mTn4vR8sLd3cFj6gYz1aQe5uWo0iPl8"
API_TOKEN = "sat_" + "Xy7-Qw_" * 6


def test_secrets_inside_values_are_masked_whatever_the_key(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging(process="web", release="r1")
    capfd.readouterr()
    get_logger("satchel.test").info(
        "relay.tick_failed",
        detail="connection to postgresql://satchel:pg-pass-1@db:5432/satchel failed",
        link=f"https://files.example.test/s/{SHARE_TOKEN}/download",
        invitation=f"Open your account: https://files.example.test/invite/{INVITATION_TOKEN}",
        header=f"Authorization: Bearer {API_TOKEN}",
        seen=[f"used {API_TOKEN}", {"query": "next=/files&password=hunter22"}],
    )
    [event] = json_lines(capfd)
    assert event["detail"] == "connection to postgresql://satchel:***@db:5432/satchel failed"
    assert event["link"] == "https://files.example.test/s/{token}/download"
    assert event["invitation"] == "Open your account: https://files.example.test/invite/{token}"
    assert event["header"] == "Authorization: Bearer ***"
    assert event["seen"] == ["used sat_***", {"query": "next=/files&password=***"}]


def test_a_library_message_and_its_exception_text_are_masked(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging(process="web", release="r1")
    capfd.readouterr()
    try:
        raise ConnectionError(f"redis://:redis-pass-2@cache:6379/0 refused a call for /s/{SHARE_TOKEN}")
    except ConnectionError as exc:
        logging.getLogger("uvicorn.error").error("calling amqp://guest:rabbit-pass-3@rabbit// failed", exc_info=exc)
        get_logger("satchel.test").error("job.failed", exc_info=exc)
    out = capfd.readouterr().out
    for secret in ("redis-pass-2", "rabbit-pass-3", SHARE_TOKEN):
        assert secret not in out
    library, structured = (json.loads(line) for line in out.splitlines())
    assert library["event"] == "calling amqp://guest:***@rabbit// failed"
    for event in (library, structured):
        assert "redis://:***@cache:6379/0 refused a call for /s/{token}" in event["exception"]


def test_masking_leaves_ordinary_text_alone() -> None:
    for text in (
        "upload.completed",
        "password authentication failed for user satchel",
        "mailto:ann@example.test",
        "http://files.example.test/shares/12",
        "2026-01-01T00:00:00Z",
    ):
        assert mask_secrets(text) == text


def test_masking_takes_linear_time_on_hostile_text() -> None:
    started = time.perf_counter()
    hostile_texts = ("token" * 100_000, "a://b:" * 100_000, "x" * 500_000, "sat_" * 100_000, "/s/" * 100_000)
    for hostile in (*hostile_texts, "/invite/" * 100_000):
        mask_secrets(hostile)
    assert time.perf_counter() - started < 2


def test_the_console_mailer_writes_share_invitations_without_their_token(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging(process="worker", release="r1")
    capfd.readouterr()
    url = f"http://files.example.test/s/{SHARE_TOKEN}"
    notice = share_invitation("bob@example.test", "ann@example.test", url, ["report.pdf"], "for Friday")
    ConsoleMailer().send(Message(to=notice.to, subject=notice.subject, text=notice.text, html=notice.html))
    out = capfd.readouterr().out
    assert SHARE_TOKEN not in out
    [event] = [e for e in (json.loads(line) for line in out.splitlines()) if e["event"] == "mail.console"]
    assert event["to"] == ["bob@example.test"]
    assert "ann@example.test shared report.pdf with you." in event["text"]
    assert "Download: http://files.example.test/s/{token}" in event["text"]


def test_the_console_mailer_writes_invitations_without_their_token(capfd: pytest.CaptureFixture[str]) -> None:
    from datetime import UTC, datetime

    configure_logging(process="worker", release="r1")
    capfd.readouterr()
    url = f"http://files.example.test/invite/{INVITATION_TOKEN}"
    notice = invitation("ines@example.test", "ann@example.test", url, datetime(2026, 1, 8, tzinfo=UTC), as_admin=False)
    ConsoleMailer().send(Message(to=notice.to, subject=notice.subject, text=notice.text, html=notice.html))
    out = capfd.readouterr().out
    assert INVITATION_TOKEN not in out
    [event] = [e for e in (json.loads(line) for line in out.splitlines()) if e["event"] == "mail.console"]
    assert "Open your account: http://files.example.test/invite/{token}" in event["text"]
