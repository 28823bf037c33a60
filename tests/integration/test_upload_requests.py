"""Upload requests through the real app: a stranger uploads into the owner's account, within every limit.

Real PostgreSQL, Redis and file storage under ``tmp_path``; every refusal is checked to leave no object,
no row and no quota behind.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from starlette.testclient import TestClient

from satchel.adapters.db.schema import jobs, upload_requests
from satchel.bootstrap import open_services
from satchel.domain.clock import utcnow
from satchel.worker.runner import run_job

from support.app import App, AppFactory
from support.smtp import smtp_server


def objects(tmp_path: Path) -> list[Path]:
    root = tmp_path / "objects"
    return [p for p in root.rglob("*") if p.is_file() and "/thumbnails/" not in str(p)] if root.exists() else []


def ask(app: App, who: Any, **terms: Any) -> dict[str, Any]:
    response = app.client.post("/api/requests", json=terms, headers=who.auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def path_of(request: dict[str, Any]) -> str:
    return "/r/" + request["token"]


def used_bytes(app: App, who: Any) -> int:
    response = app.client.get("/api/me", headers=who.auth)
    assert response.status_code == 200, response.text
    return int(response.json()["used_bytes"])


@contextmanager
def stranger(app: App) -> Iterator[TestClient]:
    """The app's client as someone with no account: no token, and none of the owner's cookies."""
    app.client.cookies.clear()
    yield app.client


def test_a_stranger_uploads_into_the_owners_account_and_the_owner_sees_it(app: App) -> None:
    owner = app.account()
    request = ask(app, owner, note="The signed contract, please.")
    with stranger(app) as anyone:
        page = anyone.get(path_of(request))
        assert page.status_code == 200
        assert "The signed contract, please." in page.text and owner.email in page.text
        sent = anyone.put(path_of(request) + "/files/contract.pdf", content=b"%PDF-1.7 signed")
    assert sent.status_code == 201, sent.text
    assert sent.json()["name"] == "contract.pdf"

    files = app.client.get("/api/files", headers=owner.auth).json()["items"]
    assert [f["name"] for f in files] == ["contract.pdf"]
    assert used_bytes(app, owner) == len(b"%PDF-1.7 signed")
    detail = app.client.get(f"/api/requests/{request['id']}", headers=owner.auth).json()
    assert detail["received_files"] == 1 and detail["received_bytes"] == len(b"%PDF-1.7 signed")
    assert [f["name"] for f in detail["files"]] == ["contract.pdf"]


def test_a_request_for_two_files_takes_two_and_refuses_the_third_leaving_nothing(app: App, tmp_path: Path) -> None:
    owner = app.account()
    request = ask(app, owner, max_files=2)
    with stranger(app) as anyone:
        for n in (1, 2):
            assert anyone.put(path_of(request) + f"/files/{n}.txt", content=b"x" * n).status_code == 201
        before = objects(tmp_path)
        third = anyone.put(path_of(request) + "/files/3.txt", content=b"xyz")
        page = anyone.get(path_of(request), headers={"Accept": "text/html"})
    assert third.status_code == 410
    assert third.headers["content-type"].startswith("application/problem+json")
    assert "all it asked for" in third.json()["detail"]
    assert objects(tmp_path) == before
    assert used_bytes(app, owner) == 3
    assert page.status_code == 410 and "all it asked for" in page.text


def test_a_file_past_the_requests_size_limit_is_cut_while_streaming_and_nothing_is_kept(
    app: App, tmp_path: Path
) -> None:
    owner = app.account()
    request = ask(app, owner, max_bytes=1000)

    def body() -> Any:  # no Content-Length: only counting while it streams can stop it
        for _ in range(20):
            yield b"y" * 100

    with stranger(app) as anyone:
        refused = anyone.put(path_of(request) + "/files/big.bin", content=body())
        declared = anyone.put(path_of(request) + "/files/big.bin", content=b"z" * 1001)
        fits = anyone.put(path_of(request) + "/files/ok.bin", content=b"k" * 1000)
    assert refused.status_code == 413 and "still accepts" in refused.json()["detail"]
    assert declared.status_code == 413
    assert fits.status_code == 201
    assert len(objects(tmp_path)) == 1
    assert used_bytes(app, owner) == 1000


def test_uploads_through_a_request_count_against_the_owners_quota(app: App, tmp_path: Path) -> None:
    owner = app.account(quota=500)
    request = ask(app, owner)
    with stranger(app) as anyone:
        refused = anyone.put(path_of(request) + "/files/too-big.bin", content=b"q" * 501)
    assert refused.status_code == 413 and "quota" in refused.json()["detail"]
    assert objects(tmp_path) == [] and used_bytes(app, owner) == 0


def test_a_password_request_takes_files_only_with_its_password(app: App) -> None:
    owner = app.account()
    request = ask(app, owner, password="open sesame 42")
    with stranger(app) as anyone:
        page = anyone.get(path_of(request))
        without = anyone.put(path_of(request) + "/files/a.txt", content=b"a")
        wrong = anyone.put(path_of(request) + "/files/a.txt", content=b"a", headers={"X-Request-Password": "nope"})
        right = anyone.put(
            path_of(request) + "/files/a.txt", content=b"a", headers={"X-Request-Password": "open sesame 42"}
        )
    assert "protected" in page.text and "request-dropzone" not in page.text
    assert without.status_code == 401 and wrong.status_code == 401
    assert right.status_code == 201, right.text


def test_a_browser_unlocks_a_password_request_and_uploads_with_its_csrf_token(app: App) -> None:
    owner = app.account()
    request = ask(app, owner, password="open sesame 42")
    with stranger(app) as browser:
        csrf = App(browser).csrf(path_of(request))
        unlocked = browser.post(
            path_of(request) + "/unlock",
            data={"password": "open sesame 42", "csrf_token": csrf},
            follow_redirects=False,
        )
        assert unlocked.status_code == 303
        page = browser.get(path_of(request))
        token = page.text.split('name="csrf-token" content="')[1].split('"')[0]
        forged = browser.put(path_of(request) + "/files/b.txt", content=b"b")
        sent = browser.put(path_of(request) + "/files/b.txt", content=b"b", headers={"X-CSRF-Token": token})
    assert "request-dropzone" in page.text
    assert forged.status_code == 403  # another site's page cannot upload with the session
    assert sent.status_code == 201, sent.text


def test_expired_and_closed_requests_answer_410_with_a_readable_page(app: App) -> None:
    owner = app.account()
    closed, expired = ask(app, owner), ask(app, owner)
    assert app.client.delete(f"/api/requests/{closed['id']}", headers=owner.auth).status_code == 204

    async def expire() -> None:
        async with app.services.database.engine.begin() as conn:
            past = utcnow() - timedelta(minutes=1)
            await conn.execute(
                sa.update(upload_requests).where(upload_requests.c.id == expired["id"]).values(expires_at=past)
            )

    app.call(expire)
    with stranger(app) as anyone:
        for request, reason in ((closed, "closed by its owner"), (expired, "expired")):
            page = anyone.get(path_of(request), headers={"Accept": "text/html"})
            put = anyone.put(path_of(request) + "/files/late.txt", content=b"late")
            assert page.status_code == 410 and reason in page.text
            assert put.status_code == 410 and reason in put.json()["detail"]
    listed = app.client.get("/api/requests", headers=owner.auth).json()["items"]
    assert {r["id"]: r["status"] for r in listed} == {closed["id"]: "revoked", expired["id"]: "expired"}
    kept = app.client.get(f"/api/requests/{closed['id']}", headers=owner.auth)
    assert kept.status_code == 200 and kept.json()["status"] == "revoked", "closing ends the link, not the record"


def test_someone_elses_request_and_an_unknown_link_are_not_found(app: App) -> None:
    owner, other = app.account(), app.account()
    request = ask(app, owner)
    assert app.client.get(f"/api/requests/{request['id']}", headers=other.auth).status_code == 404
    assert app.client.delete(f"/api/requests/{request['id']}", headers=other.auth).status_code == 404
    with stranger(app) as anyone:
        assert anyone.get("/r/" + "A" * 32).status_code == 404
        assert anyone.put("/r/not-a-token/files/x.txt", content=b"x").status_code == 404


def test_concurrent_uploads_to_a_one_file_request_let_exactly_one_through(app: App, tmp_path: Path) -> None:
    owner = app.account()
    request = ask(app, owner, max_files=1)
    results: list[int] = []
    start = threading.Barrier(8)

    def upload(n: int) -> None:
        with stranger(app) as anyone:
            start.wait()
            results.append(anyone.put(path_of(request) + f"/files/{n}.bin", content=b"c" * 50_000).status_code)

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [201] + [410] * 7
    assert len(objects(tmp_path)) == 1 and used_bytes(app, owner) == 50_000


def run_once(app: App, job_id: str) -> str:
    """Run one job as a worker does: on services of its own, without a pool, closed after."""

    async def work() -> str:
        services = open_services(app.services.settings, pooled=False)
        try:
            return await run_job(services, job_id)
        finally:
            await services.close()

    return app.call(work)


def test_the_owner_is_mailed_once_for_each_file_that_came_in(make_app: AppFactory) -> None:
    public = "https://satchel.example.test"
    with smtp_server() as mailbox, make_app(EMAIL_URL=mailbox.url, SATCHEL_PUBLIC_URL=public) as app:
        owner = app.account()
        request = ask(app, owner, note="Holiday photos")
        with stranger(app) as anyone:
            assert anyone.put(path_of(request) + "/files/beach.jpg", content=b"not really a jpeg").status_code == 201

        async def mail_jobs() -> list[str]:
            async with app.services.database.engine.begin() as conn:
                rows = await conn.execute(sa.select(jobs.c.id, jobs.c.payload).where(jobs.c.kind == "mail"))
                return [r.id for r in rows if r.payload.get("request_id") == request["id"]]

        [job_id] = app.call(mail_jobs)
        assert run_once(app, job_id) == "sent"
        assert run_once(app, job_id) == "skipped", "a second delivery of a done job sends nothing"
    [mail] = mailbox.messages
    assert mail.rcpt_tos == [owner.email]
    assert "beach.jpg" in mail.message["Subject"]
    assert f"{public}/requests/{request['id']}" in mail.text and "Holiday photos" in mail.text


def test_viewing_an_upload_link_leaves_no_state_in_redis(app: App, redis_url: str) -> None:
    import redis

    owner = app.account()
    request = ask(app, owner)
    keys = redis.Redis.from_url(redis_url)
    before = set(keys.scan_iter(count=1000))
    with stranger(app) as anyone:
        for _ in range(200):
            assert anyone.get(path_of(request), headers={"Accept": "text/html"}).status_code == 200
            anyone.cookies.clear()  # each view a new visitor
    assert set(keys.scan_iter(count=1000)) - before == set()


def test_the_request_form_takes_its_size_limit_in_the_binary_units_pages_show(app: App) -> None:
    owner = app.account()
    app.sign_in(owner)
    form = {"max_size": "3", "max_size_unit": "MiB", "csrf_token": app.csrf("/requests/new")}

    made = app.client.post("/requests", data=form, follow_redirects=False)
    decimal = app.client.post("/requests", data={**form, "max_size_unit": "MB"}, headers={"Accept": "text/html"})

    assert made.status_code == 303, made.text
    [created] = app.client.get("/api/requests", headers=owner.auth).json()["items"]
    assert created["max_bytes"] == 3 * 1024**2
    assert decimal.status_code == 422 and "Choose MiB or GiB" in decimal.text
