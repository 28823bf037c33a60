"""``GET /metrics`` on the public port, and what the app counts: requests by route template, bytes moved.

In one process (no multiprocess directory) a scrape shows this process's counters, which every test in
the session shares: each test reads them before and after what it does.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import time

import pytest

from satchel import __version__
from satchel.ports.health import ServiceUnavailable
from satchel.worker.metrics import OutboxBacklog

from support.app import App, AppFactory
from support.metrics import value

TOKEN = secrets.token_urlsafe(24)
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def scrape(app: App) -> str:
    response = app.client.get("/metrics", headers=BEARER)
    assert response.status_code == 200, response.text
    return response.text


def test_metrics_route_does_not_exist_without_a_token(make_app: AppFactory) -> None:
    with make_app() as app:
        response = app.client.get("/metrics", headers=BEARER)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_metrics_route_refuses_a_missing_or_wrong_token(make_app: AppFactory) -> None:
    with make_app(SATCHEL_METRICS_TOKEN=TOKEN) as app:
        for headers in ({}, {"Authorization": "Bearer " + "x" * len(TOKEN)}, {"Authorization": f"Basic {TOKEN}"}):
            response = app.client.get("/metrics", headers=headers)
            assert response.status_code == 401, headers
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert "satchel_" not in response.text


def test_metrics_route_answers_the_token_and_stays_out_of_the_api_document(make_app: AppFactory) -> None:
    with make_app(SATCHEL_METRICS_TOKEN=TOKEN) as app:
        response = app.client.get("/metrics", headers=BEARER)
        document = app.client.get("/openapi.json").json()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["cache-control"] == "no-store"
    assert value(response.text, "satchel_build_info", release="test") == 1
    assert "/metrics" not in document["paths"]


def test_requests_are_counted_by_route_template_and_never_by_their_path(make_app: AppFactory) -> None:
    with make_app(SATCHEL_METRICS_TOKEN=TOKEN) as app:
        owner = app.account()
        uploaded = app.upload(owner, "notes.txt", b"hello")
        file_id, token = uploaded["file"]["id"], uploaded["share"]["token"]
        before = scrape(app)
        assert app.client.get(f"/s/{token}/download").status_code == 200
        assert app.client.get(f"/s/{token}/download").status_code == 200
        assert app.client.get(f"/api/files/{file_id}", headers=owner.auth).status_code == 200
        assert app.client.get(f"/no/such/{token}").status_code == 404
        assert app.client.get("/static/docs.js").status_code == 200
        after = scrape(app)

    def moved(**labels: str) -> float:
        return value(after, "satchel_http_requests_total", **labels) - value(
            before, "satchel_http_requests_total", **labels
        )

    assert moved(method="GET", route="/s/{token}/download", status="200") == 2
    assert moved(method="GET", route="/api/files/{file_id}", status="200") == 1
    assert moved(method="GET", route="<unmatched>", status="404") == 1
    assert moved(method="GET", route="/static/{path}", status="200") == 1
    assert value(after, "satchel_http_request_duration_seconds_count", route="/s/{token}/download") >= 2
    assert token not in after and file_id not in after, "labels carry templates, never what a client sent"


def test_a_made_up_method_is_counted_as_other(make_app: AppFactory) -> None:
    with make_app(SATCHEL_METRICS_TOKEN=TOKEN) as app:
        before = scrape(app)
        app.client.request("BREW", "/healthz")
        after = scrape(app)
    assert "BREW" not in after
    labels = {"method": "OTHER", "route": "/healthz"}
    assert (
        value(after, "satchel_http_requests_total", **labels) - value(before, "satchel_http_requests_total", **labels)
        == 1
    )


def test_upload_and_download_byte_counters_move_by_exactly_the_bytes_sent(make_app: AppFactory) -> None:
    data = secrets.token_bytes(300_001)
    with make_app(SATCHEL_METRICS_TOKEN=TOKEN) as app:
        owner = app.account()
        before = scrape(app)
        uploaded = app.upload(owner, "data.bin", data)
        file_id, token = uploaded["file"]["id"], uploaded["share"]["token"]
        middle = scrape(app)
        whole = app.client.get(f"/api/files/{file_id}/content", headers=owner.auth)
        part = app.client.get(f"/api/files/{file_id}/content", headers={**owner.auth, "Range": "bytes=100-1099"})
        shared = app.client.get(f"/s/{token}/download")
        preview = app.client.get(f"/api/files/{file_id}/thumbnail", headers=owner.auth)  # not a download
        after = scrape(app)
    assert (whole.content, part.status_code, part.content, shared.content) == (data, 206, data[100:1100], data)
    assert preview.status_code == 404
    uploaded_bytes = value(middle, "satchel_upload_bytes_total") - value(before, "satchel_upload_bytes_total")
    downloaded = value(after, "satchel_download_bytes_total") - value(middle, "satchel_download_bytes_total")
    assert uploaded_bytes == len(data)
    assert downloaded == len(data) + 1000 + len(data)
    assert value(after, "satchel_upload_bytes_total") == value(middle, "satchel_upload_bytes_total")


def test_resumable_upload_parts_count_as_upload_bytes(make_app: AppFactory) -> None:
    data = secrets.token_bytes(70_000)
    with make_app(SATCHEL_METRICS_TOKEN=TOKEN) as app:
        owner = app.account()
        tus = {**owner.auth, "Tus-Resumable": "1.0.0"}
        created = app.client.post(
            "/api/uploads/", headers={**tus, "Upload-Length": str(len(data)), "Upload-Metadata": "filename ZC5iaW4="}
        )
        assert created.status_code == 201, created.text
        location = created.headers["location"]
        before = scrape(app)
        for offset in (0, 40_000):
            chunk = data[offset : offset + 40_000]
            headers = {**tus, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}
            assert app.client.patch(location, content=chunk, headers=headers).status_code == 204
        after = scrape(app)
    assert value(after, "satchel_upload_bytes_total") - value(before, "satchel_upload_bytes_total") == len(data)
    assert value(after, "satchel_http_requests_total", method="PATCH", route="/api/uploads/{upload_id}") >= 2


async def _outage() -> None:
    raise OSError("the store is gone")


async def _answer() -> None:
    return None


def test_a_breaker_shows_open_while_it_is_open_and_closed_again_after(make_app: AppFactory) -> None:
    with make_app(SATCHEL_METRICS_TOKEN=TOKEN) as app:
        guard = app.services.storage.guard
        assert value(scrape(app), "satchel_breaker_open", service="storage") == 0
        for _ in range(guard.failure_threshold):
            with pytest.raises(ServiceUnavailable):
                app.call(guard.call, _outage)
        opened = scrape(app)
        guard.reset_after = 0  # the next call is the trial, at once
        app.call(guard.call, _answer)
        closed = scrape(app)
    assert value(opened, "satchel_breaker_open", service="storage") == 1
    assert value(closed, "satchel_breaker_open", service="storage") == 0


def test_outbox_counts_are_left_out_rather_than_wait_for_a_database_that_does_not_answer() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # takes connections, never says a word
        port = silent.getsockname()[1]
        began = time.monotonic()
        families = list(OutboxBacklog(f"postgresql://satchel@127.0.0.1:{port}/satchel", timeout=0.5).collect())
        took = time.monotonic() - began
    assert families == []
    assert took < 1.5


def test_a_scrape_while_a_count_is_stalled_starts_no_second_one() -> None:
    accepted: list[socket.socket] = []
    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent.settimeout(0.2)

        def take() -> None:
            for _ in range(20):
                with contextlib.suppress(OSError):
                    accepted.append(silent.accept()[0])

        taker = threading.Thread(target=take, daemon=True)
        taker.start()
        backlog = OutboxBacklog(f"postgresql://satchel@127.0.0.1:{silent.getsockname()[1]}/satchel", timeout=0.3)
        assert list(backlog.collect()) == []  # the first count stalls and is left behind
        assert list(backlog.collect()) == []  # the second does not even try while it is
        taker.join()
    assert len(accepted) == 1, "one connection, however many scrapes"
    for conn in accepted:
        conn.close()


def test_outbox_counts_every_queue_even_an_empty_one(database_url: str) -> None:
    families = {f.name: f for f in OutboxBacklog(database_url).collect()}
    assert {"satchel_jobs_outbox_backlog", "satchel_jobs_waiting"} <= families.keys()
    queues = {s.labels["queue"] for s in families["satchel_jobs_outbox_backlog"].samples}
    assert {"default", "mail", "scan", "media"} <= queues


def test_a_liveness_probe_answered_before_routing_is_still_counted_under_its_route(make_app: AppFactory) -> None:
    with make_app(SATCHEL_METRICS_TOKEN=TOKEN) as app:
        before = scrape(app)
        response = app.client.get("/healthz")
        after = scrape(app)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "release": "test", "version": __version__}
    labels = {"method": "GET", "route": "/healthz", "status": "200"}
    moved = value(after, "satchel_http_requests_total", **labels) - value(
        before, "satchel_http_requests_total", **labels
    )
    assert moved == 1
