"""``satchel web`` as production runs it: a real Gunicorn process serving on $PORT."""

from __future__ import annotations

import asyncio
import re
import signal
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from satchel.bootstrap import open_services
from satchel.runtime.embedded import EmbeddedRedis
from satchel.settings import load_settings

from support.moto import MotoServer
from support.processes import SatchelProcess, create_account, run_satchel, running_web


@pytest.fixture
def web(base_env: dict[str, str]) -> Iterator[tuple[SatchelProcess, str]]:
    with running_web(base_env) as started:
        yield started


def test_healthz_answers_with_the_release(web: tuple[SatchelProcess, str], base_env: dict[str, str]) -> None:
    _, url = web
    response = httpx.get(f"{url}/healthz")
    assert response.status_code == 200
    assert response.json()["release"] == base_env["RELEASE_ID"]


def test_readyz_checks_database_schema_redis_and_storage(web: tuple[SatchelProcess, str]) -> None:
    _, url = web
    response = httpx.get(f"{url}/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "schema": "ok", "redis": "ok", "storage": "ok"}


def test_a_web_process_is_not_ready_until_its_release_step_has_run_and_then_is_without_a_restart(
    base_env: dict[str, str], empty_database: str
) -> None:
    env = {**base_env, "DATABASE_URL": empty_database}
    with running_web(env) as (_, url):
        waiting = httpx.get(f"{url}/readyz")
        assert waiting.status_code == 503
        assert "run `satchel migrate`" in waiting.json()["checks"]["schema"]
        assert waiting.json()["checks"]["database"] == "ok", "the server answers; its schema is what is missing"
        assert run_satchel("migrate", env=env).returncode == 0
        assert httpx.get(f"{url}/readyz").status_code == 200


def test_every_stdout_line_is_a_json_event_with_release_and_process(
    web: tuple[SatchelProcess, str], base_env: dict[str, str]
) -> None:
    process, url = web
    httpx.get(f"{url}/healthz", headers={"X-Request-ID": "trace-42"})
    request = process.wait_for_event("http.request")
    process.stop()
    events = process.events()  # fails if any line is not JSON
    assert len(events) > 3
    for event in events:
        assert {"timestamp", "level", "event", "process", "release"} <= event.keys()
        assert event["process"] == "web"
        assert event["release"] == base_env["RELEASE_ID"]
    logged = [e for e in events if e["event"] == "http.request" and e.get("request_id") == "trace-42"]
    assert logged and logged[0]["status"] == 200 and logged[0]["path"] == "/healthz"
    assert request["logger"] == "satchel.http"
    assert any(e["logger"].startswith("gunicorn") for e in events), "Gunicorn's own lines are JSON too"
    assert process.stderr_lines == [] or all("Traceback" not in line for line in process.stderr_lines)


def test_share_tokens_and_credentials_never_reach_the_log(
    web: tuple[SatchelProcess, str], base_env: dict[str, str]
) -> None:
    """Everything a web process writes while a link is made, viewed, unlocked and downloaded: the link's token,
    the API token and the password appear on no line, while the requests themselves are logged."""
    process, url = web
    token = create_account(base_env, "logs@example.test")
    auth = {"Authorization": f"Bearer {token}"}
    uploaded = httpx.put(f"{url}/api/files/notes.txt", content=b"notes", headers=auth, params={"share": "false"})
    file_id = uploaded.json()["file"]["id"]
    password = "open sesame 8412"
    shared = httpx.post(f"{url}/api/shares", json={"file_ids": [file_id], "password": password}, headers=auth)
    link = shared.json()["url"]
    share_token = link.rsplit("/", 1)[-1]
    with httpx.Client(base_url=url) as browser:
        page = browser.get(f"/s/{share_token}", headers={"Accept": "text/html"})
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, page.text[:300]
        unlocked = browser.post(f"/s/{share_token}/unlock", data={"password": password, "csrf_token": csrf.group(1)})
        assert unlocked.status_code in (200, 303)
        assert browser.get(f"/s/{share_token}/download").status_code == 200
    process.wait_for(
        lambda: any(e.get("path", "").endswith("/download") for e in process.events_so_far()), what="the download's log"
    )
    process.stop()
    lines = process.lines + process.stderr_lines
    assert [e["path"] for e in process.events() if e["event"] == "http.request" and "/s/" in e.get("path", "")]
    for secret in (share_token, token, password):
        assert not [line for line in lines if secret in line], f"{secret[:6]}… reached the log"


def test_invitation_tokens_never_reach_the_log(web: tuple[SatchelProcess, str], base_env: dict[str, str]) -> None:
    """Everything a web process writes while an administrator invites someone, who opens the link, chooses a
    password and lands signed in: the link's token and the password appear on no line, while the requests to
    the link are logged (as /invite/{token})."""
    process, url = web
    admin = create_account(base_env, f"inviter-{base_env['PORT']}@example.test", admin=True)
    email = f"invitee-{base_env['PORT']}@example.test"
    invited = httpx.post(
        f"{url}/api/admin/invitations", json={"email": email}, headers={"Authorization": f"Bearer {admin}"}
    )
    assert invited.status_code == 201, invited.text
    token = invited.json()["url"].rsplit("/", 1)[-1]
    password = "my own invited password 77"
    with httpx.Client(base_url=url) as browser:
        page = browser.get(f"/invite/{token}", headers={"Accept": "text/html"})
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert page.status_code == 200 and csrf, page.text[:300]
        opened = browser.post(f"/invite/{token}", data={"password": password, "csrf_token": csrf.group(1)})
        assert opened.status_code == 303 and opened.headers["location"] == "/files"
        assert browser.get(f"/invite/{token}").status_code == 410
    process.wait_for(
        lambda: sum(e.get("path") == "/invite/{token}" for e in process.events_so_far()) >= 3, what="the link's log"
    )
    process.stop()
    lines = process.lines + process.stderr_lines
    audited = [e for e in process.events() if e["event"] == "audit.account.invitation_accepted"]
    assert audited and audited[0]["actor_email"] == email
    for secret in (token, password, admin):
        assert not [line for line in lines if secret in line], f"{secret[:6]}… reached the log"


def test_password_reset_tokens_never_reach_the_log(web: tuple[SatchelProcess, str], base_env: dict[str, str]) -> None:
    """Everything a web process writes while someone asks for a reset link, opens it and chooses a new password,
    by page and by API: the link's token and the passwords appear on no line, while the requests to the link
    are logged (as /password-reset/{token} and /api/password-resets/{token})."""
    process, url = web
    email = f"forgetful-{base_env['PORT']}@example.test"
    create_account(base_env, email)
    with httpx.Client(base_url=url) as browser:
        for _ in range(2):
            assert browser.post("/api/password-resets", json={"email": email}).status_code == 202
        first, second = asyncio.run(_mailed_tokens(base_env, email))  # what the worker would mail
        page = browser.get(f"/password-reset/{first}", headers={"Accept": "text/html"})
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert page.status_code == 200 and csrf, page.text[:300]
        password = "my own new password 77"
        done = browser.post(f"/password-reset/{first}", data={"password": password, "csrf_token": csrf.group(1)})
        assert done.status_code == 303 and done.headers["location"] == "/files"
        late = browser.post(f"/api/password-resets/{second}", json={"password": "another new password 88"})
        assert late.status_code == 410, "ended by the first"
    process.wait_for(
        lambda: sum(e.get("path") == "/password-reset/{token}" for e in process.events_so_far()) >= 2,
        what="the link's log",
    )
    process.stop()
    lines = process.lines + process.stderr_lines
    assert [e for e in process.events() if e.get("path") == "/api/password-resets/{token}"]
    assert [e for e in process.events() if e["event"] == "audit.account.password_reset"]
    for secret in (first, second, password, "another new password 88"):
        assert not [line for line in lines if secret in line], f"{secret[:6]}… reached the log"


async def _mailed_tokens(base_env: dict[str, str], email: str) -> list[str]:
    """The links the mail jobs for ``email`` make, made as the worker makes them."""
    services = open_services(load_settings(**base_env), pooled=False)
    try:
        async with services.uow() as uow:
            due = await uow.jobs.recent(status="pending", limit=500)
        tokens = []
        for job in reversed(due):  # oldest first: the order they were asked for
            if job.payload.get("notice") == "password_reset" and job.payload.get("email") == email:
                issued = await services.password_resets.issue(job.payload)
                assert issued is not None
                tokens.append(issued.token)
        return tokens
    finally:
        await services.close()


def test_request_id_is_taken_from_the_client_or_generated(web: tuple[SatchelProcess, str]) -> None:
    _, url = web
    assert httpx.get(f"{url}/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    generated = httpx.get(f"{url}/healthz").headers["X-Request-ID"]
    assert len(generated) == 32
    hostile = httpx.get(f"{url}/healthz", headers={"X-Request-ID": "x" * 500}).headers["X-Request-ID"]
    assert hostile != "x" * 500


def test_unknown_route_is_problem_json(web: tuple[SatchelProcess, str]) -> None:
    _, url = web
    response = httpx.get(f"{url}/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


def test_sigterm_lets_an_in_flight_request_finish_then_exits_zero(
    base_env: dict[str, str], owned_redis: EmbeddedRedis
) -> None:
    env = {**base_env, "REDIS_URL": owned_redis.url, "WEB_CONCURRENCY": "1", "SATCHEL_READY_TIMEOUT": "10"}
    process = SatchelProcess("web", env=env)
    url = f"http://127.0.0.1:{env['PORT']}"
    process.wait_http(f"{url}/readyz")

    # Pause the process's Redis so /readyz stays in flight while SIGTERM arrives.
    import redis

    redis.Redis.from_url(owned_redis.url).execute_command("CLIENT", "PAUSE", "1500", "ALL")
    result: dict[str, httpx.Response] = {}
    in_flight = threading.Thread(target=lambda: result.update(r=httpx.get(f"{url}/readyz", timeout=20)))
    in_flight.start()
    time.sleep(0.5)
    process.signal(signal.SIGTERM)
    in_flight.join(20)

    assert process.wait(30) == 0
    response = result["r"]
    assert response.status_code == 503, "the request completed, and /readyz reports the shutdown"
    assert response.json()["detail"] == "shutting down"
    assert response.json()["checks"]["redis"] == "ok"


@pytest.mark.parametrize("storage", ["file", "s3"])
def test_same_process_runs_on_file_or_s3_storage_by_url_alone(
    storage: str, base_env: dict[str, str], moto_server: MotoServer, s3_bucket: str
) -> None:
    env = {**base_env, **(moto_server.env(s3_bucket) if storage == "s3" else {})}
    process = SatchelProcess("web", env=env)
    try:
        url = f"http://127.0.0.1:{env['PORT']}"
        process.wait_http(f"{url}/readyz")
        started = process.wait_for_event("web.started")
        assert started["storage"].startswith(f"{storage}://")
    finally:
        process.stop()
