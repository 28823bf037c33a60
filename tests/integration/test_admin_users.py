"""The admin console's Users area through the real app: /admin/users pages and forms and /api/admin/users,
/api/admin/invitations and /api/admin/signup, for administrators only; every change on the audit trail, no
administrator locking themselves out, and a disabled account's session and token ending at once."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from test_admin_console import HTML, audit, make_admin

from satchel.domain.accounts import AccountDisabled, NotAdmin, User
from satchel.services.users import UserChange

from support.app import PASSWORD, Account, App

GiB = 1024**3
ADMIN_API = [
    ("GET", "/api/admin/users", None),
    ("POST", "/api/admin/users", {"email": "made-{n}@example.test", "password": PASSWORD}),
    ("GET", "/api/admin/users/{user}", None),
    ("PATCH", "/api/admin/users/{user}", {"disabled": True, "is_admin": True, "quota_bytes": 5}),
    ("GET", "/api/admin/invitations", None),
    ("POST", "/api/admin/invitations", {"email": "invited-{n}@example.test"}),
    ("POST", "/api/admin/invitations/{invitation}/resend", None),
    ("DELETE", "/api/admin/invitations/{invitation}", None),
    ("GET", "/api/admin/signup", None),
]
ADMIN_PAGES = ["/admin/users", "/admin/users/new", "/admin/users/{user}"]
ADMIN_FORMS = [
    ("/admin/users", {"email": "made-{n}@example.test", "password": PASSWORD}),
    ("/admin/invitations", {"email": "invited-{n}@example.test"}),
    ("/admin/invitations/{invitation}/resend", {}),
    ("/admin/invitations/{invitation}/revoke", {}),
    ("/admin/users/{user}/quota", {"quota": "1", "quota_unit": "MiB"}),
    ("/admin/users/{user}/disable", {}),
    ("/admin/users/{user}/grant-admin", {}),
    ("/admin/users/{user}/revoke-admin", {}),
    ("/admin/users/{user}/enable", {}),
]


def fill(template: str, ids: dict[str, Any]) -> str:
    return template.format(**ids)


@pytest.fixture
def carols(app: App) -> dict[str, Any]:
    """What the refused callers aim at: Carol's account (an administrator, disabled, so every change would
    show) and an invitation waiting."""
    root = make_admin(app)
    carol = app.account()
    app.call(app.services.users.change, carol.id, UserChange(is_admin=True, disabled=True))
    waiting = app.client.post("/api/admin/invitations", json={"email": f"w-{carol.id}@example.test"}, headers=root.auth)
    assert waiting.status_code == 201, waiting.text
    return {"user": carol.id, "invitation": waiting.json()["id"], "n": carol.id, "root": root}


def unchanged(app: App, ids: dict[str, Any]) -> None:
    """Nothing the refused requests aimed at happened."""
    carol = app.call(app.services.users.get, ids["user"])
    assert (carol.is_admin, carol.disabled, carol.quota_bytes) == (True, True, 50 * GiB)
    made, total = app.call(lambda: app.services.users.search(search=f"-{ids['n']}@"))
    assert [u.email for u in made] == [] and total == 0
    invitations, _ = app.call(lambda: app.services.invitations.list(status="pending", limit=200))
    assert [i.email for i in invitations if i.id == ids["invitation"]] == [f"w-{ids['n']}@example.test"]
    assert [i for i in invitations if i.email == f"invited-{ids['n']}@example.test"] == []


def user_of(app: App, account: Account) -> User:
    return app.call(app.services.users.get, account.id)


def csrf_of(text: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert match, text[:300]
    return match.group(1)


# --- who may ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_API)
def test_anonymous_callers_get_401_and_accounts_without_is_admin_403_from_every_users_api_route(
    app: App, carols: dict[str, Any], method: str, path: str, body: dict[str, Any] | None
) -> None:
    payload = {k: fill(v, carols) if isinstance(v, str) else v for k, v in (body or {}).items()} or None
    anonymous = app.client.request(method, fill(path, carols), json=payload)
    assert anonymous.status_code == 401 and anonymous.headers["content-type"] == "application/problem+json"
    refused = app.client.request(method, fill(path, carols), json=payload, headers=app.account().auth)
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    unchanged(app, carols)


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_every_users_page_sends_anonymous_browsers_to_sign_in_and_refuses_non_admins(
    app: App, carols: dict[str, Any], path: str
) -> None:
    anonymous = app.client.get(fill(path, carols), headers=HTML, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == f"/login?next={fill(path, carols)}"
    app.sign_in(app.account())
    refused = app.client.get(fill(path, carols), headers=HTML)
    assert refused.status_code == 403 and "Only administrators may do that." in refused.text


@pytest.mark.parametrize(("path", "data"), ADMIN_FORMS)
def test_every_users_form_refuses_anonymous_and_non_admin_posts_and_changes_nothing(
    app: App, carols: dict[str, Any], path: str, data: dict[str, str]
) -> None:
    fields = {k: fill(v, carols) for k, v in data.items()}
    anonymous = app.client.post(
        fill(path, carols), data={**fields, "csrf_token": app.csrf()}, headers=HTML, follow_redirects=False
    )
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")
    app.sign_in(app.account())
    refused = app.client.post(fill(path, carols), data={**fields, "csrf_token": app.csrf("/files")}, headers=HTML)
    assert refused.status_code == 403 and "Only administrators" in refused.text
    unchanged(app, carols)


@pytest.mark.parametrize(("path", "data"), ADMIN_FORMS)
def test_every_users_form_without_its_csrf_token_changes_nothing(
    app: App, carols: dict[str, Any], path: str, data: dict[str, str]
) -> None:
    app.sign_in(carols["root"])
    response = app.client.post(fill(path, carols), data={k: fill(v, carols) for k, v in data.items()}, headers=HTML)
    assert response.status_code == 403 and "This form has expired" in response.text
    unchanged(app, carols)


# --- accounts through the API ------------------------------------------------------------------------


def test_the_api_lists_searches_and_pages_accounts_newest_first(app: App) -> None:
    root, alice, bob = make_admin(app), app.account(), app.account()
    everyone = app.client.get("/api/admin/users", params={"limit": 2}, headers=root.auth).json()
    assert [u["email"] for u in everyone["items"]] == [bob.email, alice.email] and everyone["total"] >= 3
    found = app.client.get("/api/admin/users", params={"q": alice.email.upper()}, headers=root.auth).json()
    assert found["total"] == 1
    [entry] = found["items"]
    assert entry == {
        "id": alice.id, "email": alice.email, "is_admin": False, "disabled": False, "quota_bytes": 50 * GiB,
        "used_bytes": 0, "created_at": entry["created_at"], "last_signed_in_at": None,
    }  # fmt: skip
    app.sign_in(alice)
    signed = app.client.get(f"/api/admin/users/{alice.id}", headers=root.auth).json()
    assert signed["last_signed_in_at"] is not None
    assert app.client.get("/api/admin/users", params={"limit": 0}, headers=root.auth).status_code == 422


def test_an_administrator_creates_an_account_that_signs_in_and_is_on_the_trail(app: App) -> None:
    root = make_admin(app)
    body = {"email": f"Made-{root.id}@Example.test", "password": PASSWORD, "is_admin": True, "quota_bytes": GiB}
    made = app.client.post("/api/admin/users", json=body, headers=root.auth)
    assert made.status_code == 201, made.text
    created = made.json()
    assert (created["email"], created["is_admin"], created["quota_bytes"]) == (
        f"made-{root.id}@example.test",
        True,
        GiB,
    )
    assert app.sign_in(Account(created["email"], "", created["id"])).status_code == 303
    (event,) = audit(app, root, subject=f"user:{created['id']}", action="admin.user_created")
    assert (event["actor_email"], event["client"]) == (root.email, "testclient")
    assert event["details"] == {"address": created["email"], "is_admin": True, "quota_bytes": GiB}
    assert PASSWORD not in str(event)
    again = app.client.post("/api/admin/users", json=body, headers=root.auth)
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    weak = app.client.post(
        "/api/admin/users", json={**body, "email": "w@example.test", "password": "short"}, headers=root.auth
    )
    assert weak.status_code == 422


def test_patch_changes_each_part_on_the_trail_and_refuses_what_would_lock_an_admin_out(app: App) -> None:
    root, alice = make_admin(app), app.account()
    changed = app.client.patch(
        f"/api/admin/users/{alice.id}", json={"is_admin": True, "quota_bytes": 2 * GiB}, headers=root.auth
    )
    assert changed.status_code == 200 and (changed.json()["is_admin"], changed.json()["quota_bytes"]) == (True, 2 * GiB)
    actions = [e["action"] for e in audit(app, root, subject=f"user:{alice.id}")]
    assert actions[:2] == ["admin.admin_granted", "admin.quota_changed"]

    for refused in ({"disabled": True}, {"is_admin": False}, {"is_admin": False, "quota_bytes": GiB}):
        answer = app.client.patch(f"/api/admin/users/{root.id}", json=refused, headers=root.auth)
        assert answer.status_code == 409 and "their own account" in answer.json()["detail"]
    assert (user_of(app, root).is_admin, user_of(app, root).disabled) == (True, False)
    assert audit(app, root, subject=f"user:{root.id}", action="admin.admin_revoked") == []

    app.upload(alice, "big.bin", b"x" * 1000, share="false")
    below = app.client.patch(f"/api/admin/users/{alice.id}", json={"quota_bytes": 999}, headers=root.auth)
    assert below.status_code == 409 and "already uses 1,000 bytes" in below.json()["detail"]
    for bad in ({"quota_bytes": 0}, {"quota_bytes": 2**63}, {"disabled": "maybe"}):
        assert app.client.patch(f"/api/admin/users/{alice.id}", json=bad, headers=root.auth).status_code == 422
    assert app.client.patch("/api/admin/users/999999999", json={"disabled": True}, headers=root.auth).status_code == 404


def test_two_administrators_restricting_each_other_at_once_leave_one_administrator(app: App) -> None:
    """Both requests are authorised as administrators' when they begin; PostgreSQL holds both accounts for the
    first change, and the second then finds its administrator demoted or disabled and is refused."""
    for first in [{"is_admin": False}, {"disabled": True}] * 5:
        ann, bea = make_admin(app), make_admin(app)
        changes = [
            (user_of(app, ann), bea.id, UserChange(**first)),
            (user_of(app, bea), ann.id, UserChange(is_admin=False)),
        ]
        outcomes = app.call(_at_once, app, changes)
        assert sum(isinstance(o, User) for o in outcomes) == 1, outcomes
        assert all(isinstance(o, (User, NotAdmin, AccountDisabled)) for o in outcomes), outcomes
        after = [user_of(app, a) for a in (ann, bea)]
        assert sum(u.is_admin and not u.disabled for u in after) == 1


async def _at_once(app: App, changes: list[tuple[User, int, UserChange]]) -> list[Any]:
    """Each change as its administrator's request makes it, all at the same moment."""
    change_user = app.services.administration.change_user
    return await asyncio.gather(*(change_user(*change) for change in changes), return_exceptions=True)


def test_a_disabled_accounts_session_and_token_stop_working_at_once_and_enabling_revives_neither(app: App) -> None:
    root, alice = make_admin(app), app.account()
    assert app.sign_in(alice).status_code == 303
    assert app.client.get("/files", headers=HTML).status_code == 200
    assert app.client.get("/api/me", headers=alice.auth).status_code == 200

    disabled = app.client.patch(f"/api/admin/users/{alice.id}", json={"disabled": True}, headers=root.auth)
    assert disabled.status_code == 200 and disabled.json()["disabled"]
    assert app.client.get("/files", headers=HTML, follow_redirects=False).headers["location"] == "/login?next=/files"
    assert app.client.get("/api/me", headers=alice.auth).status_code == 401
    (event,) = audit(app, root, subject=f"user:{alice.id}", action="admin.user_disabled")
    assert event["details"]["tokens_revoked"] == 1

    app.client.patch(f"/api/admin/users/{alice.id}", json={"disabled": False}, headers=root.auth)
    assert app.client.get("/files", headers=HTML, follow_redirects=False).status_code == 303, "the session stays ended"
    assert app.client.get("/api/me", headers=alice.auth).status_code == 401, "the token stays revoked"
    assert app.sign_in(alice).status_code == 303, "a new sign-in works"


def test_the_signup_route_says_the_policy_in_force(app: App) -> None:
    root = make_admin(app)
    policy = app.client.get("/api/admin/signup", headers=root.auth).json()
    assert policy == {"policy": "open", "invitation_days": 7, "default_quota_bytes": 50 * GiB}


# --- accounts through the pages ----------------------------------------------------------------------


def test_the_users_page_shows_the_policy_and_lists_searches_and_pages_accounts(app: App) -> None:
    root, alice = make_admin(app), app.account()
    app.sign_in(root)
    page = app.client.get("/admin/users", params={"q": alice.email}, headers=HTML)
    assert page.status_code == 200
    assert "Sign-up:" in page.text and "open" in page.text and "SATCHEL_SIGNUP=open|invite|closed" in page.text
    assert alice.email in page.text and root.email not in page.text.split("Search accounts")[1]
    assert '0 B <span class="muted">of 50 GiB</span>' in page.text and "never" in page.text
    assert f'href="/admin/users/{alice.id}"' in page.text
    second = app.client.get("/admin/users", params={"page": 2}, headers=HTML)
    assert second.status_code == 200


def test_an_account_page_sets_a_quota_typed_with_a_unit_and_disables_with_its_forms(app: App) -> None:
    root, alice = make_admin(app), app.account()
    app.sign_in(root)
    page = app.client.get(f"/admin/users/{alice.id}", headers=HTML)
    assert page.status_code == 200 and 'value="50"' in page.text and "<option selected>GiB</option>" in page.text

    set_quota = app.client.post(
        f"/admin/users/{alice.id}/quota", data={"quota": "1.5", "quota_unit": "TiB", "csrf_token": csrf_of(page.text)},
        headers=HTML,
    )  # fmt: skip
    assert set_quota.status_code == 200 and f"{alice.email} may now store 1.5 TiB." in set_quota.text
    assert user_of(app, alice).quota_bytes == 3 * 1024**4 // 2
    wrong = app.client.post(
        f"/admin/users/{alice.id}/quota", data={"quota": "ten", "quota_unit": "GiB", "csrf_token": csrf_of(page.text)},
        headers=HTML,
    )  # fmt: skip
    assert wrong.status_code == 422 and "binary unit" in wrong.text

    done = app.client.post(f"/admin/users/{alice.id}/disable", data={"csrf_token": csrf_of(page.text)}, headers=HTML)
    assert done.status_code == 200 and "their sessions ended and their API tokens are revoked" in done.text
    assert user_of(app, alice).disabled and "Enable account" in done.text
    granted = app.client.post(
        f"/admin/users/{alice.id}/grant-admin", data={"csrf_token": csrf_of(done.text)}, headers=HTML
    )
    assert "is now an administrator" in granted.text and user_of(app, alice).is_admin
    assert [e["action"] for e in audit(app, root, subject=f"user:{alice.id}")][:3] == [
        "admin.admin_granted", "admin.user_disabled", "admin.quota_changed",
    ]  # fmt: skip


def test_an_administrators_own_page_offers_no_way_to_lock_themselves_out_and_refuses_one(app: App) -> None:
    root = make_admin(app)
    app.sign_in(root)
    page = app.client.get(f"/admin/users/{root.id}", headers=HTML)
    assert "You cannot disable your own account" in page.text and "Disable account" not in page.text
    assert "You cannot remove your own administrator rights" in page.text and "Remove administrator" not in page.text
    for action in ("disable", "revoke-admin"):
        refused = app.client.post(
            f"/admin/users/{root.id}/{action}", data={"csrf_token": csrf_of(page.text)}, headers=HTML
        )
        assert refused.status_code == 200 and "cannot disable or demote their own account" in refused.text
    assert (user_of(app, root).is_admin, user_of(app, root).disabled) == (True, False)


def test_creating_an_account_from_the_page_says_what_is_wrong_or_opens_it(app: App) -> None:
    root, alice = make_admin(app), app.account()
    app.sign_in(root)
    form = app.client.get("/admin/users/new", headers=HTML)
    assert "Invite by email" in form.text and "Create with a password" in form.text
    taken = app.client.post(
        "/admin/users",
        data={"email": alice.email, "password": PASSWORD, "csrf_token": csrf_of(form.text)},
        headers=HTML,
    )
    assert taken.status_code == 409 and "already exists" in taken.text and alice.email in taken.text
    email = f"paged-{root.id}@example.test"
    made = app.client.post(
        "/admin/users",
        data={
            "email": email,
            "password": PASSWORD,
            "quota": "500",
            "quota_unit": "MiB",
            "csrf_token": csrf_of(form.text),
        },
        headers=HTML,
    )
    assert made.status_code == 200 and f"Created the account {email}" in made.text and "500 MiB" in made.text


# --- one query a listing ----------------------------------------------------------------------------


def test_the_accounts_and_invitations_listings_are_one_query_each(app: App) -> None:
    from sqlalchemy import event

    root = make_admin(app)
    for n in range(3):
        app.account()
        app.client.post("/api/admin/invitations", json={"email": f"q{n}-{root.id}@example.test"}, headers=root.auth)
    admin = user_of(app, root)
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    engine = app.services.database._units.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        users, _ = app.call(lambda: app.services.administration.users(admin, limit=50))
        assert len(statements) == 1 and len(users) >= 4
        statements.clear()
        waiting, _ = app.call(lambda: app.services.administration.invitations(admin, status="pending"))
        assert len(statements) == 1 and len(waiting) >= 3
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_the_trail_shows_an_operators_change_as_the_operators_and_sizes_in_binary_units(app: App) -> None:
    root = make_admin(app)
    made = app.call(
        lambda: app.services.accounts.create_user(f"cli-{root.id}@example.test", PASSWORD, client="command line")
    )
    app.call(lambda: app.services.users.change(made.id, UserChange(quota_bytes=2 * GiB), client="command line"))
    app.sign_in(root)
    page = app.client.get("/admin/audit", params={"subject": f"user:{made.id}"}, headers=HTML)
    rows = page.text.partition("<tbody>")[2]
    assert rows.count('<span class="muted">operator</span>') == 2 and "visitor" not in rows
    assert "quota bytes:</span> 2 GiB" in rows and "previous quota bytes:</span> 50 GiB" in rows
