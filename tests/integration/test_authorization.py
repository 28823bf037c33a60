"""Authorization on every route, as a matrix: nobody reaches what is not theirs."""

from __future__ import annotations

import pytest

from support.app import App

# Every non-public route, as (method, path template, JSON body).
PRIVATE_API = [
    ("GET", "/api/me", None),
    ("GET", "/api/files", None),
    ("GET", "/api/files/{file}", None),
    ("PATCH", "/api/files/{file}", {"name": "stolen.txt"}),
    ("DELETE", "/api/files/{file}", None),
    ("GET", "/api/files/{file}/content", None),
    ("PUT", "/api/files/new.txt", None),
    ("POST", "/api/shares", {"file_ids": ["{file}"]}),
    ("GET", "/api/shares", None),
    ("GET", "/api/shares/{share}", None),
    ("DELETE", "/api/shares/{share}", None),
    ("GET", "/api/tokens", None),
    ("POST", "/api/tokens", {"name": "mine now"}),
    ("DELETE", "/api/tokens/1", None),
    ("POST", "/api/me/password", {"current_password": "x", "new_password": "yyyyyyyyyyyy"}),
]
PRIVATE_PAGES = ["/files", "/files/{file}", "/shares", "/shares/{share}", "/shares/new?file={file}", "/account"]


def _fill(template: str, ids: dict[str, str]) -> str:
    return template.format(**ids)


@pytest.fixture
def bobs(app: App) -> dict[str, str]:
    bob = app.account()
    uploaded = app.upload(bob, "bob.txt", b"bob's")
    return {"file": uploaded["file"]["id"], "share": str(uploaded["share"]["id"]), "token": uploaded["share"]["token"]}


@pytest.mark.parametrize(("method", "path", "body"), PRIVATE_API)
def test_anonymous_cannot_reach_any_api_route(
    app: App, bobs: dict[str, str], method: str, path: str, body: object
) -> None:
    json = {k: ([_fill(x, bobs) for x in v] if isinstance(v, list) else v) for k, v in (body or {}).items()}
    response = app.client.request(method, _fill(path, bobs), json=json or None)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", PRIVATE_PAGES)
def test_anonymous_browsers_are_sent_to_sign_in(app: App, bobs: dict[str, str], path: str) -> None:
    response = app.client.get(_fill(path, bobs), headers={"Accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


def test_a_bad_token_is_refused_not_ignored(app: App) -> None:
    response = app.client.get("/api/files", headers={"Authorization": "Bearer sat_not-a-real-token"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/files/{file}", None),
        ("PATCH", "/api/files/{file}", {"name": "stolen.txt"}),
        ("DELETE", "/api/files/{file}", None),
        ("GET", "/api/files/{file}/content", None),
        ("POST", "/api/shares", {"file_ids": ["{file}"]}),
        ("GET", "/api/shares/{share}", None),
        ("DELETE", "/api/shares/{share}", None),
    ],
)
def test_alice_cannot_touch_bobs_files_or_shares(
    app: App, bobs: dict[str, str], method: str, path: str, body: object
) -> None:
    alice = app.account()
    json = {k: ([_fill(x, bobs) for x in v] if isinstance(v, list) else v) for k, v in (body or {}).items()}
    response = app.client.request(method, _fill(path, bobs), json=json or None, headers=alice.auth)
    assert response.status_code == 404, "someone else's things look exactly like missing ones"


def test_alice_does_not_see_bobs_files_or_shares_in_her_lists(app: App, bobs: dict[str, str]) -> None:
    alice = app.account()
    assert app.client.get("/api/files", headers=alice.auth).json()["total"] == 0
    assert app.client.get("/api/shares", headers=alice.auth).json()["total"] == 0


def test_bobs_things_survive_alices_attempts(app: App, bobs: dict[str, str]) -> None:
    alice = app.account()
    app.client.delete(f"/api/files/{bobs['file']}", headers=alice.auth)
    app.client.delete(f"/api/shares/{bobs['share']}", headers=alice.auth)
    bob_share = app.client.get(f"/s/{bobs['token']}/download")
    assert bob_share.status_code == 200 and bob_share.content == b"bob's"


def test_alice_cannot_revoke_bobs_tokens(app: App) -> None:
    bob, alice = app.account(), app.account()
    bob_tokens = app.client.get("/api/tokens", headers=bob.auth).json()
    response = app.client.delete(f"/api/tokens/{bob_tokens[0]['id']}", headers=alice.auth)
    assert response.status_code == 404
    assert app.client.get("/api/me", headers=bob.auth).status_code == 200


@pytest.mark.parametrize("page", ["/files/{file}", "/shares/{share}", "/shares/new?file={file}"])
def test_alice_cannot_open_bobs_pages(app: App, bobs: dict[str, str], page: str) -> None:
    alice = app.account()
    assert app.sign_in(alice).status_code == 303
    response = app.client.get(_fill(page, bobs), headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert "bob.txt" not in response.text
