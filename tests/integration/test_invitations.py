"""Invitations and the sign-up policy through the real app: the mail through a real SMTP server, the link opened
and used by a stranger's browser, the policy under each value of SATCHEL_SIGNUP, and two accepts of one link at
once opening one account."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from test_admin_console import HTML, audit, make_admin
from test_jobs import job_rows, run

from satchel.adapters.db.schema import invitations

from support.app import PASSWORD, Account, App, AppFactory
from support.smtp import Mailbox, smtp_server

PUBLIC_URL = "http://satchel.test"  # the test client's own address: its session cookie is not Secure-only


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


def invite(app: App, root: Account, email: str, **terms: Any) -> dict[str, Any]:
    response = app.client.post("/api/admin/invitations", json={"email": email, **terms}, headers=root.auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def path_of(url: str) -> str:
    return "/invite/" + url.rsplit("/invite/", 1)[1]


def csrf_of(text: str) -> str:
    """The page's CSRF token: its form's, or the one every page carries for scripts when it has no form."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', text) or re.search(
        r'name="csrf-token" content="([^"]+)"', text
    )
    assert match, text[:300]
    return match.group(1)


def accept(app: App, path: str, password: str = PASSWORD, **options: Any) -> Any:
    """Open the link as someone without an account, and choose a password."""
    app.client.cookies.clear()
    page = app.client.get(path, headers=HTML)
    form = {"password": password, "csrf_token": csrf_of(page.text)}
    return app.client.post(path, data=form, headers=HTML, **options)


def accounts_at(app: App, email: str) -> int:
    _, total = app.call(lambda: app.services.users.search(search=email))
    return total


# --- the whole way, by mail -------------------------------------------------------------------------


def test_an_invited_person_opens_the_mailed_link_chooses_a_password_and_is_signed_in(
    make_app: AppFactory, mailbox: Mailbox
) -> None:
    with make_app(EMAIL_URL=mailbox.url, SATCHEL_PUBLIC_URL=PUBLIC_URL, SATCHEL_SIGNUP="invite") as app:
        root = make_admin(app)
        app.sign_in(root)
        form = app.client.get("/admin/users/new", headers=HTML)
        email = f"ines-{root.id}@example.test"
        sent = app.client.post(
            "/admin/invitations",
            data={"email": email, "is_admin": "true", "csrf_token": csrf_of(form.text)},
            headers=HTML,
        )
        assert sent.status_code == 200 and f"Invited {email}: the link is on its way by email." in sent.text
        shown = re.search(r'id="invited-link" class="mono" value="([^"]+)"', sent.text)
        assert shown and shown.group(1).startswith(f"{PUBLIC_URL}/invite/")
        assert "invited-link" not in app.client.get("/admin/users", headers=HTML).text, "shown once"

        waiting, _ = app.call(lambda: app.services.invitations.list(status="pending", limit=200))
        [invited] = [i for i in waiting if i.email == email]
        [job] = job_rows(app, "mail", notice="invitation", invitation_id=invited.id)
        assert run(app, job.id) == "sent"
        [mail] = mailbox.to(email)
        assert mail.message["Subject"] == "You are invited to Satchel" and mail.mail_from.endswith("example.test")
        link = shown.group(1)
        assert link in mail.text and link in mail.html and f"{root.email} invited you" in mail.text
        assert "an administrator's" in mail.text

        app.client.cookies.clear()
        page = app.client.get(path_of(link), headers=HTML)
        assert page.status_code == 200 and "Open your account" in page.text
        assert f'value="{email}" autocomplete="username" readonly' in page.text, "the address is fixed"
        assert page.headers["cache-control"] == "no-store"
        assert "satchel_session" not in page.headers.get("set-cookie", ""), "no session before there is an account"
        opened = app.client.post(
            path_of(link), data={"password": PASSWORD, "csrf_token": csrf_of(page.text)}, headers=HTML,
            follow_redirects=False,
        )  # fmt: skip
        assert opened.status_code == 303 and opened.headers["location"] == "/files"
        files = app.client.get("/files", headers=HTML)
        assert files.status_code == 200 and "your account is open" in files.text and email in files.text
        assert app.client.get("/admin/users", headers=HTML).status_code == 200, "invited as an administrator"

        again = app.client.get(path_of(link), headers=HTML)
        assert again.status_code == 410 and "already used" in again.text
        (accepted,) = audit(app, root, action="account.invitation_accepted", user=email)
        assert accepted["details"]["invited_by"] == root.email


def test_the_accept_form_without_its_csrf_token_opens_nothing(make_app: AppFactory) -> None:
    with make_app(SATCHEL_SIGNUP="invite") as app:
        root = make_admin(app)
        url = invite(app, root, f"nocsrf-{root.id}@example.test")["url"]
        app.client.cookies.clear()
        refused = app.client.post(path_of(url), data={"password": PASSWORD}, headers=HTML)
        assert refused.status_code == 403 and accounts_at(app, f"nocsrf-{root.id}@") == 0
        weak = accept(app, path_of(url), "short")
        assert weak.status_code == 422 and "at least 10 characters" in weak.text
        assert accept(app, path_of(url)).status_code == 200, "the link still works after both"


# --- the sign-up policy under each value --------------------------------------------------------------


def test_open_lets_anyone_sign_up_and_invitations_work_too(make_app: AppFactory) -> None:
    with make_app(SATCHEL_SIGNUP="open") as app:
        page = app.client.get("/signup", headers=HTML)
        assert 'action="/signup"' in page.text and 'href="/signup"' in app.client.get("/", headers=HTML).text
        root = make_admin(app)
        email = f"self-{root.id}@example.test"
        done = app.client.post("/signup", data={"email": email, "password": PASSWORD, "csrf_token": csrf_of(page.text)})
        assert done.status_code == 200 and accounts_at(app, email) == 1
        (signed_up,) = audit(app, root, action="account.signed_up", user=email)
        assert signed_up["client"] == "testclient"
        assert accept(app, path_of(invite(app, root, f"inv-{root.id}@example.test")["url"])).status_code == 200


def test_invite_says_accounts_are_by_invitation_and_only_a_link_opens_one(make_app: AppFactory) -> None:
    with make_app(SATCHEL_SIGNUP="invite") as app:
        page = app.client.get("/signup", headers=HTML)
        assert "Accounts on this server are by invitation" in page.text and 'action="/signup"' not in page.text
        assert 'href="/signup"' not in app.client.get("/login", headers=HTML).text
        root = make_admin(app)
        email = f"self-{root.id}@example.test"
        refused = app.client.post(
            "/signup", data={"email": email, "password": PASSWORD, "csrf_token": csrf_of(page.text)}, headers=HTML
        )
        assert refused.status_code == 403 and "by invitation" in refused.text and accounts_at(app, email) == 0

        opened = accept(app, path_of(invite(app, root, email)["url"]))
        assert opened.status_code == 200 and accounts_at(app, email) == 1


def test_closed_lets_nobody_sign_up_links_refuse_and_administrators_create_accounts(make_app: AppFactory) -> None:
    with make_app(SATCHEL_SIGNUP="invite") as app:
        root = make_admin(app)
        before = invite(app, root, f"early-{root.id}@example.test")["url"]
    with make_app(SATCHEL_SIGNUP="closed") as app:  # the operator closed sign-up since
        page = app.client.get("/signup", headers=HTML)
        assert "Sign-up is closed on this server" in page.text and 'action="/signup"' not in page.text
        refused = app.client.post(
            "/signup", data={"email": "x@example.test", "password": PASSWORD, "csrf_token": csrf_of(page.text)}
        )
        assert refused.status_code == 403
        link = app.client.get(path_of(before), headers=HTML)
        assert (
            link.status_code == 403 and "invitation links included" in link.text and "Open my account" not in link.text
        )
        posted = app.client.post(
            path_of(before), data={"password": PASSWORD, "csrf_token": csrf_of(link.text)}, headers=HTML
        )
        assert posted.status_code == 403 and accounts_at(app, f"early-{root.id}@") == 0

        invited = app.client.post("/api/admin/invitations", json={"email": "new@example.test"}, headers=root.auth)
        assert invited.status_code == 409 and "SATCHEL_SIGNUP=closed" in invited.json()["detail"]
        made = app.client.post(
            "/api/admin/users", json={"email": f"made-{root.id}@example.test", "password": PASSWORD}, headers=root.auth
        )
        assert made.status_code == 201
        app.sign_in(root)
        assert "Invitations are off" in app.client.get("/admin/users/new", headers=HTML).text


@pytest.mark.parametrize("policy", ["open", "invite", "closed"])
def test_the_console_shows_the_policy_in_force_and_says_it_is_configuration(make_app: AppFactory, policy: str) -> None:
    with make_app(SATCHEL_SIGNUP=policy) as app:
        root = make_admin(app)
        app.sign_in(root)
        page = app.client.get("/admin/users", headers=HTML)
        assert f'Sign-up: <span class="tag">{policy}</span>' in page.text
        assert "This is configuration, set by the environment" in page.text
        assert app.client.get("/api/admin/signup", headers=root.auth).json()["policy"] == policy


# --- the link's life: once, re-sent, withdrawn, expired --------------------------------------------------


def test_an_invitation_to_an_address_with_an_account_or_one_waiting_is_a_clear_409(app: App) -> None:
    root, alice = make_admin(app), app.account()
    taken = app.client.post("/api/admin/invitations", json={"email": alice.email.upper()}, headers=root.auth)
    assert taken.status_code == 409 and taken.json()["detail"] == f"{alice.email} already has an account."
    invite(app, root, f"twice-{root.id}@example.test")
    again = app.client.post(
        "/api/admin/invitations", json={"email": f"twice-{root.id}@example.test"}, headers=root.auth
    )
    assert again.status_code == 409 and "re-send it instead" in again.json()["detail"]
    bad = app.client.post("/api/admin/invitations", json={"email": "not an address"}, headers=root.auth)
    assert bad.status_code == 422


def test_re_sending_gives_a_new_link_and_the_old_one_no_longer_opens_anything(app: App) -> None:
    root = make_admin(app)
    first = invite(app, root, f"resend-{root.id}@example.test")
    resent = app.client.post(f"/api/admin/invitations/{first['id']}/resend", headers=root.auth)
    assert resent.status_code == 200 and resent.json()["url"] != first["url"]
    assert len(job_rows(app, "mail", notice="invitation", invitation_id=first["id"])) == 2

    old = app.client.get(path_of(first["url"]), headers=HTML)
    assert old.status_code == 404 and "replaced by a newer one" in old.text
    assert accept(app, path_of(resent.json()["url"])).status_code == 200
    accepted = app.client.post(f"/api/admin/invitations/{first['id']}/resend", headers=root.auth)
    assert accepted.status_code == 409


def test_a_withdrawn_invitations_link_refuses_and_an_accepted_one_cannot_be_withdrawn(app: App) -> None:
    root = make_admin(app)
    withdrawn = invite(app, root, f"gone-{root.id}@example.test")
    assert app.client.delete(f"/api/admin/invitations/{withdrawn['id']}", headers=root.auth).status_code == 204
    page = app.client.get(path_of(withdrawn["url"]), headers=HTML)
    assert page.status_code == 410 and "withdrawn" in page.text
    listed = app.client.get("/api/admin/invitations", params={"status": "revoked"}, headers=root.auth).json()
    assert withdrawn["id"] in [i["id"] for i in listed["items"]]

    used = invite(app, root, f"used-{root.id}@example.test")
    accept(app, path_of(used["url"]))
    refused = app.client.delete(f"/api/admin/invitations/{used['id']}", headers=root.auth)
    assert refused.status_code == 409 and "disable the account instead" in refused.json()["detail"]
    assert app.client.delete("/api/admin/invitations/999999999", headers=root.auth).status_code == 404
    assert [e["action"] for e in audit(app, root, subject=f"invitation:{withdrawn['id']}")] == [
        "admin.invitation_revoked", "admin.user_invited",
    ]  # fmt: skip


def test_an_expired_link_says_so_and_re_sending_it_works_for_the_full_time_again(app: App) -> None:
    root = make_admin(app)
    expired = invite(app, root, f"late-{root.id}@example.test")

    async def expire() -> None:
        async with app.services.database.engine.begin() as conn:
            await conn.execute(
                sa.update(invitations).where(invitations.c.id == expired["id"]).values(expires_at=sa.func.now())
            )

    app.call(expire)
    page = app.client.get(path_of(expired["url"]), headers=HTML)
    assert page.status_code == 410 and "has expired" in page.text
    renewed = app.client.post(f"/api/admin/invitations/{expired['id']}/resend", headers=root.auth).json()
    assert renewed["status"] == "pending" and accept(app, path_of(renewed["url"])).status_code == 200


def test_the_console_re_sends_and_withdraws_with_its_forms(app: App) -> None:
    root = make_admin(app)
    waiting = invite(app, root, f"forms-{root.id}@example.test")
    app.sign_in(root)
    page = app.client.get("/admin/users", headers=HTML)
    assert waiting["email"] in page.text and "Invitations waiting" in page.text
    resent = app.client.post(
        f"/admin/invitations/{waiting['id']}/resend", data={"csrf_token": csrf_of(page.text)}, headers=HTML
    )
    assert "the one sent before no longer works" in resent.text and 'id="invited-link"' in resent.text
    gone = app.client.post(
        f"/admin/invitations/{waiting['id']}/revoke", data={"csrf_token": csrf_of(resent.text)}, headers=HTML
    )
    assert f"Withdrew the invitation to {waiting['email']}" in gone.text
    table = gone.text.partition('id="waiting-heading"')[2].partition("</table>")[0]
    assert waiting["email"] not in table, "no longer waiting"


def test_no_link_token_is_kept_in_the_database_or_on_the_trail(app: App) -> None:
    root = make_admin(app)
    first = invite(app, root, f"secret-{root.id}@example.test")
    second = app.client.post(f"/api/admin/invitations/{first['id']}/resend", headers=root.auth).json()
    accept(app, path_of(second["url"]))
    tokens = [url.rsplit("/", 1)[1] for url in (first["url"], second["url"])]

    async def everything() -> str:
        async with app.services.database.engine.connect() as conn:
            rows = [
                (await conn.execute(sa.text(f"SELECT coalesce(json_agg(t)::text, '') FROM {table} t"))).scalar_one()
                for table in ("invitations", "jobs", "audit_events", "users")
            ]
        return "\n".join(rows)

    stored = app.call(everything)
    assert f"secret-{root.id}@example.test" in stored
    for token in tokens:
        assert token not in stored


# --- two at once ------------------------------------------------------------------------------------


def test_two_accepts_of_one_invitation_at_once_open_exactly_one_account(app: App) -> None:
    """Both accepts are held at the invitation's row (the test holds its lock) until both wait there; then
    one uses the invitation up and opens the account, and the other finds it used."""
    root = make_admin(app)
    made = invite(app, root, f"race-{root.id}@example.test")
    token = made["url"].rsplit("/", 1)[1]

    async def waiting_on_the_row() -> int:
        async with app.services.database.engine.connect() as conn:
            query = sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query ILIKE 'UPDATE invitations%'"
            )
            return int((await conn.execute(query)).scalar_one())

    async def race() -> list[Any]:
        async with app.services.database.engine.connect() as holder:
            await holder.execute(sa.select(invitations.c.id).where(invitations.c.id == made["id"]).with_for_update())
            accepts = [
                asyncio.ensure_future(app.services.invitations.accept(token, f"{PASSWORD} {n}", client="race"))
                for n in range(2)
            ]
            deadline = time.monotonic() + 20
            while await waiting_on_the_row() < 2:
                assert time.monotonic() < deadline, "the two accepts never both waited for the invitation"
                assert not any(a.done() for a in accepts), [a.exception() for a in accepts if a.done()]
                await asyncio.sleep(0.02)
            await holder.rollback()
        return await asyncio.gather(*accepts, return_exceptions=True)

    outcomes = app.call(race)
    opened = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(opened) == 1 and len(refused) == 1, outcomes
    assert "already used" in str(refused[0])
    assert accounts_at(app, f"race-{root.id}@") == 1
    assert len(audit(app, root, action="account.invitation_accepted", user=made["email"])) == 1
