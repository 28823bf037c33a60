"""The admin console through the real app: /admin pages and /api/admin routes for administrators only, the
audit trail written by real requests, and every listing, delete, revoke and retry."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from satchel.adapters.db.schema import jobs
from satchel.domain.accounts import User
from satchel.services.administration import audit_filter

from support.app import PASSWORD, Account, App

ADMIN_API = [
    ("GET", "/api/admin/audit"),
    ("GET", "/api/admin/files"),
    ("DELETE", "/api/admin/files/{file}"),
    ("GET", "/api/admin/shares"),
    ("DELETE", "/api/admin/shares/{share}"),
    ("GET", "/api/admin/jobs"),
    ("POST", "/api/admin/jobs/{job}/retry"),
]
ADMIN_PAGES = ["/admin/files", "/admin/shares", "/admin/audit", "/admin/jobs"]
ADMIN_FORMS = ["/admin/files/{file}/delete", "/admin/shares/{share}/revoke", "/admin/jobs/{job}/retry"]
HTML = {"Accept": "text/html"}


def make_admin(app: App) -> Account:
    async def create() -> User:
        email = f"admin-{uuid.uuid4().hex[:10]}@example.test"
        return await app.services.accounts.create_user(email, PASSWORD, is_admin=True)

    user = app.call(create)
    new = app.call(app.services.accounts.create_token, user, "tests")
    return Account(email=user.email, token=new.secret, id=user.id)


def failed_job(app: App) -> str:
    async def park() -> str:
        job_id = await app.services.jobs.enqueue("thumbnail", {"file_id": "0" * 32}, queue="media")
        async with app.services.database.engine.begin() as conn:
            values = {"status": "failed", "attempts": 3, "last_error": "OSError: cannot identify image"}
            await conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(**values))
        return job_id

    return app.call(park)


@pytest.fixture
def bobs(app: App) -> dict[str, str]:
    bob = app.account()
    uploaded = app.upload(bob, "bob.txt", b"bob's")
    return {"file": uploaded["file"]["id"], "share": str(uploaded["share"]["id"]), "job": "a" * 32}


def audit(app: App, admin: Account, **params: Any) -> list[dict[str, Any]]:
    response = app.client.get("/api/admin/audit", params=params, headers=admin.auth)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


# --- who may ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ADMIN_API)
def test_anonymous_callers_get_401_from_every_admin_api_route(
    app: App, bobs: dict[str, str], method: str, path: str
) -> None:
    response = app.client.request(method, path.format(**bobs))
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("method", "path"), ADMIN_API)
def test_accounts_without_is_admin_get_403_from_every_admin_api_route(
    app: App, bobs: dict[str, str], method: str, path: str
) -> None:
    response = app.client.request(method, path.format(**bobs), headers=app.account().auth)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert app.call(app.services.files.owned, _user(app, bobs), bobs["file"])  # still there


def _user(app: App, ids: dict[str, str]) -> User:
    async def owner() -> User:
        async with app.services.uow() as uow:
            file = await uow.files.get(ids["file"])
            assert file is not None
            user = await uow.users.get(file.owner_id)
            assert user is not None
            return user

    return app.call(owner)


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_anonymous_browsers_are_sent_to_sign_in_from_every_admin_page(app: App, path: str) -> None:
    response = app.client.get(path, headers=HTML, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={path}"


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_signed_in_users_without_is_admin_get_a_readable_403_page(app: App, path: str) -> None:
    app.sign_in(app.account())
    response = app.client.get(path, headers=HTML)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "Only administrators may do that." in response.text


@pytest.mark.parametrize("path", ADMIN_FORMS)
def test_every_admin_form_refuses_anonymous_and_non_admin_posts(app: App, bobs: dict[str, str], path: str) -> None:
    csrf = app.csrf()
    anonymous = app.client.post(path.format(**bobs), data={"csrf_token": csrf}, headers=HTML, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")

    app.sign_in(app.account())
    refused = app.client.post(path.format(**bobs), data={"csrf_token": app.csrf("/files")}, headers=HTML)
    assert refused.status_code == 403 and "Only administrators" in refused.text
    assert app.call(app.services.files.owned, _user(app, bobs), bobs["file"])


def test_an_admin_form_without_its_csrf_token_changes_nothing(app: App, bobs: dict[str, str]) -> None:
    app.sign_in(make_admin(app))
    response = app.client.post(f"/admin/files/{bobs['file']}/delete", data={}, headers=HTML)
    assert response.status_code == 403
    assert app.call(app.services.files.owned, _user(app, bobs), bobs["file"])


# --- the audit trail, written by real requests -------------------------------------------------------------


def test_an_upload_a_download_and_a_revoke_are_on_the_trail_with_the_client_address(app: App) -> None:
    admin, alice = make_admin(app), app.account()
    uploaded = app.upload(alice, "trail.txt", b"twelve bytes")
    file_id, share = uploaded["file"]["id"], uploaded["share"]
    assert app.client.get(f"/s/{share['token']}/download").status_code == 200
    assert app.client.delete(f"/api/shares/{share['id']}", headers=alice.auth).status_code == 204

    (upload,) = audit(app, admin, subject=f"file:{file_id}")
    assert (upload["action"], upload["actor_email"], upload["client"]) == ("file.uploaded", alice.email, "testclient")
    assert upload["details"] == {"name": "trail.txt", "size": 12}
    revoked, downloaded, created = audit(app, admin, subject=f"share:{share['id']}")
    assert [e["action"] for e in (revoked, downloaded, created)] == [
        "share.revoked",
        "share.downloaded",
        "share.created",
    ]
    assert downloaded["actor_id"] is None and downloaded["details"]["files"] == [file_id]
    assert downloaded["client"] == "testclient" and downloaded["details"]["count"] == 1
    assert share["token"] not in str([revoked, downloaded, created])


def test_sign_ins_and_failed_sign_ins_are_on_the_trail(app: App) -> None:
    admin, alice = make_admin(app), app.account()
    assert app.sign_in(alice).status_code == 303
    csrf = app.csrf()
    wrong = app.client.post("/login", data={"email": alice.email, "password": "not the one!", "csrf_token": csrf})
    assert wrong.status_code == 401

    failed, signed_in = audit(app, admin, user=alice.email.upper())
    assert (signed_in["action"], signed_in["subject"]) == ("account.signed_in", f"user:{alice.id}")
    assert (failed["action"], failed["details"]) == ("account.sign_in_failed", {"reason": "wrong password"})
    assert "not the one!" not in str(failed)


def test_the_audit_api_filters_by_action_and_time_and_refuses_a_bad_filter(app: App) -> None:
    admin, alice = make_admin(app), app.account()
    app.upload(alice, "a.txt", b"a", share="false")
    (event,) = audit(app, admin, user=alice.email, action="file.uploaded")
    assert audit(app, admin, user=alice.email, since=event["at"]) == [event]
    assert audit(app, admin, user=alice.email, until=event["at"]) == []

    bad = app.client.get("/api/admin/audit", params={"action": "file.eaten"}, headers=admin.auth)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    for not_a_time in ("2026-01-01T00:00:00", "2026-01-01", "0.5", "1700000000"):  # no zone, no time, numbers
        refused = app.client.get("/api/admin/audit", params={"since": not_a_time}, headers=admin.auth)
        assert refused.status_code == 422, not_a_time
    backward = {"since": event["at"], "until": "2000-01-01T00:00:00Z"}
    assert audit(app, admin, **backward) == [], "a range ending before it starts holds nothing"


def test_the_audit_page_lists_filters_and_says_what_is_wrong_with_a_filter(app: App) -> None:
    admin, alice = make_admin(app), app.account()
    app.upload(alice, "paged.txt", b"a", share="false")
    app.sign_in(admin)

    page = app.client.get("/admin/audit", params={"user": alice.email}, headers=HTML)
    assert page.status_code == 200 and "paged.txt" in page.text and "file.uploaded" in page.text
    bad = app.client.get("/admin/audit", params={"since": "yesterday"}, headers=HTML)
    assert bad.status_code == 422 and "is not a date and time" in bad.text


# --- files, shares, jobs ----------------------------------------------------------------------------------


def test_the_files_api_lists_every_users_files_with_owner_and_an_admin_deletes_one(app: App) -> None:
    admin, alice = make_admin(app), app.account()
    file_id = app.upload(alice, "evidence.bin", b"x" * 40, share="false")["file"]["id"]

    listed = app.client.get("/api/admin/files", params={"q": alice.email, "sort": "-size"}, headers=admin.auth).json()
    assert listed["total"] == 1 and listed["items"][0]["owner_email"] == alice.email
    assert listed["items"][0]["size"] == 40 and listed["items"][0]["scan_status"] == "unscanned"

    assert app.client.delete(f"/api/admin/files/{file_id}", headers=admin.auth).status_code == 204
    assert app.client.get(f"/api/files/{file_id}", headers=alice.auth).status_code == 404
    assert app.client.get("/api/me", headers=alice.auth).json()["used_bytes"] == 0
    (deleted,) = audit(app, admin, subject=f"file:{file_id}", action="admin.file_deleted")
    assert deleted["actor_email"] == admin.email and deleted["details"]["owner_id"] == alice.id
    assert app.client.delete(f"/api/admin/files/{file_id}", headers=admin.auth).status_code == 404


def test_the_files_page_searches_and_deletes_with_its_form(app: App) -> None:
    admin, alice = make_admin(app), app.account()
    file_id = app.upload(alice, "page-delete.txt", b"abc", share="false")["file"]["id"]
    app.sign_in(admin)

    page = app.client.get("/admin/files", params={"q": "page-delete"}, headers=HTML)
    assert page.status_code == 200 and alice.email in page.text and "page-delete.txt" in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    done = app.client.post(f"/admin/files/{file_id}/delete", data={"csrf_token": csrf.group(1)}, headers=HTML)
    assert done.status_code == 200 and "Deleted page-delete.txt." in done.text
    assert app.client.get(f"/api/files/{file_id}", headers=alice.auth).status_code == 404


def test_the_shares_api_filters_by_state_and_an_admin_revokes_any_link(app: App) -> None:
    admin, alice = make_admin(app), app.account()
    share = app.upload(alice, "linked.txt", b"abc")["share"]

    active = app.client.get("/api/admin/shares", params={"status": "active", "limit": 200}, headers=admin.auth)
    mine = [s for s in active.json()["items"] if s["id"] == share["id"]]
    assert mine and mine[0]["owner_email"] == alice.email and mine[0]["file_names"] == ["linked.txt"]
    assert "token" not in mine[0] and "url" not in mine[0]

    assert app.client.delete(f"/api/admin/shares/{share['id']}", headers=admin.auth).status_code == 204
    assert app.client.get(f"/api/shares/{share['id']}", headers=alice.auth).json()["status"] == "revoked"
    assert app.client.get(f"/s/{share['token']}/download").status_code == 410
    assert audit(app, admin, subject=f"share:{share['id']}")[0]["action"] == "admin.share_revoked"
    bad = app.client.get("/api/admin/shares", params={"status": "lost"}, headers=admin.auth)
    assert bad.status_code == 422


def test_the_shares_page_shows_state_and_revokes_with_its_form(app: App) -> None:
    admin, alice = make_admin(app), app.account()
    share = app.upload(alice, "page-linked.txt", b"abc")["share"]
    app.sign_in(admin)

    page = app.client.get("/admin/shares", params={"status": "active"}, headers=HTML)
    assert page.status_code == 200 and "page-linked.txt" in page.text
    csrf = app.csrf("/admin/shares")
    done = app.client.post(f"/admin/shares/{share['id']}/revoke", data={"csrf_token": csrf}, headers=HTML)
    assert done.status_code == 200 and "Revoked the link" in done.text
    assert app.client.get(f"/api/shares/{share['id']}", headers=alice.auth).json()["status"] == "revoked"


def test_failed_jobs_are_listed_and_retried_from_the_api_and_the_page(app: App) -> None:
    admin = make_admin(app)
    first, second = failed_job(app), failed_job(app)

    listed = app.client.get("/api/admin/jobs", headers=admin.auth).json()
    mine = {j["id"]: j for j in listed if j["id"] in (first, second)}
    assert mine[first]["last_error"] == "OSError: cannot identify image" and mine[first]["attempts"] == 3
    assert app.client.post(f"/api/admin/jobs/{first}/retry", headers=admin.auth).status_code == 204
    assert app.client.post(f"/api/admin/jobs/{first}/retry", headers=admin.auth).status_code == 404

    app.sign_in(admin)
    page = app.client.get("/admin/jobs", headers=HTML)
    assert second in page.text and first not in page.text
    done = app.client.post(f"/admin/jobs/{second}/retry", data={"csrf_token": app.csrf("/admin/jobs")}, headers=HTML)
    assert done.status_code == 200 and "back in the queue" in done.text
    (retried,) = audit(app, admin, subject=f"job:{second}")
    assert (retried["action"], retried["actor_email"]) == ("job.retried", admin.email)


def test_each_listing_is_one_query_however_many_rows_and_files_it_holds(app: App) -> None:
    from sqlalchemy import event

    admin, alice = make_admin(app), app.account()
    ids = [app.upload(alice, f"n-{i}.txt", b"abc", share="false")["file"]["id"] for i in range(4)]
    for pair in (ids[:2], ids[2:]):
        app.share(alice, pair)

    async def admin_account() -> User | None:
        async with app.services.uow() as uow:
            return await uow.users.get(admin.id)

    admin_user = app.call(admin_account)
    assert admin_user is not None
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    engine = app.services.database._units.sync_engine  # the engine units of work run on
    event.listen(engine, "before_cursor_execute", count)
    try:
        shares, _ = app.call(lambda: app.services.administration.shares(admin_user, limit=50))
        assert len(statements) == 1 and any(s.file_names for s in shares)
        statements.clear()
        app.call(lambda: app.services.administration.files(admin_user, search=alice.email))
        assert len(statements) == 1
        statements.clear()
        app.call(lambda: app.services.administration.audit(admin_user, audit_filter(email=alice.email)))
        assert len(statements) == 1
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_resumable_upload_is_on_the_trail_once_it_becomes_a_file(app: App) -> None:
    import base64

    admin, alice = make_admin(app), app.account()
    name = base64.b64encode(b"resumed.bin").decode()
    tus = {"Tus-Resumable": "1.0.0", **alice.auth}
    created = app.client.post(
        "/api/uploads/", headers={**tus, "Upload-Length": "10", "Upload-Metadata": f"filename {name}"}
    )
    path = created.headers["location"].removeprefix("http://satchel.test")
    octets = {**tus, "Content-Type": "application/offset+octet-stream"}
    app.client.patch(path, content=b"01234", headers={**octets, "Upload-Offset": "0"})
    assert audit(app, admin, user=alice.email) == [], "not a file yet"
    done = app.client.patch(path, content=b"56789", headers={**octets, "Upload-Offset": "5"})

    (event,) = audit(app, admin, user=alice.email)
    assert event["subject"] == f"file:{done.headers['Satchel-File-Id']}" and event["client"] == "testclient"
    assert (event["action"], event["details"]) == ("file.uploaded", {"name": "resumed.bin", "size": 10})
