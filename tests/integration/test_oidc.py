"""Sign-in through a real OpenID Connect provider (oidc-provider-mock, started on a free loopback port by the
test): discovery, the authorization code flow with PKCE, the ID token checked against the provider's keys, and
which account each identity reaches under each sign-up policy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import oidc_provider_mock
import pytest
from test_admin_console import HTML, audit, make_admin

from satchel.runtime.embedded import free_port

from support.app import App, AppFactory

CLIENT = {"OIDC_CLIENT_ID": "satchel", "OIDC_CLIENT_SECRET": "the client secret", "OIDC_PROVIDER_NAME": "Example ID"}


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """A real OpenID Connect provider; its issuer URL."""
    with oidc_provider_mock.run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


def person(issuer: str, subject: str, email: str, *, verified: bool) -> None:
    """Tell the provider who ``subject`` is: the claims its ID token carries."""
    claims = {"email": email, "email_verified": verified, "name": subject}
    assert httpx.put(f"{issuer}/users/{quote(subject)}", json=claims).status_code == 204


def to_provider(app: App) -> str:
    """Press "Sign in with …" on the sign-in page; the provider's authorization URL it sends the browser to."""
    page = app.client.get("/login", headers=HTML)
    assert 'id="sign-in-with-provider"' in page.text and "Sign in with Example ID" in page.text
    sent = app.client.get("/auth/oidc?next=%2Ffiles", headers=HTML, follow_redirects=False)
    assert sent.status_code == 303, sent.text
    return sent.headers["location"]


def authorize(url: str, subject: str) -> str:
    """Sign in at the provider as ``subject``; the callback URL it sends the browser back to."""
    answered = httpx.post(url, data={"sub": subject})
    assert answered.status_code == 302, answered.text
    return answered.headers["location"]


def sign_in(app: App, issuer: str, subject: str, **tamper: str) -> Any:
    app.client.cookies.clear()
    url = to_provider(app)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"] and query["nonce"]
    assert url.startswith(f"{issuer}/oauth2/authorize") and query["redirect_uri"] == [
        "http://satchel.test/auth/oidc/callback"
    ]
    back = urlsplit(authorize(url, subject))
    params = {k: v[0] for k, v in parse_qs(back.query).items()} | tamper
    return app.client.get(back.path, params=params, headers=HTML, follow_redirects=False)


def signed_in_as(app: App) -> str | None:
    me = app.client.get("/api/me")
    return str(me.json()["email"]) if me.status_code == 200 else None


def test_a_new_person_opens_an_account_under_open_and_comes_back_to_it(make_app: AppFactory, provider: str) -> None:
    with make_app(SATCHEL_SIGNUP="open", OIDC_ISSUER=provider, **CLIENT) as app:
        root = make_admin(app)
        email = f"olga-{root.id}@example.test"
        person(provider, f"olga-{root.id}", email, verified=True)
        landed = sign_in(app, provider, f"olga-{root.id}")
        assert landed.status_code == 303 and landed.headers["location"] == "/files"
        assert signed_in_as(app) == email
        assert app.client.get("/files", headers=HTML).status_code == 200
        (opened,) = audit(app, root, action="account.signed_up", user=email)
        (signed,) = audit(app, root, action="account.signed_in", user=email)
        assert opened["details"] == {"method": "oidc"} and signed["details"] == {"method": "oidc"}
        assert sign_in(app, provider, f"olga-{root.id}").status_code == 303 and signed_in_as(app) == email
        _, total = app.call(lambda: app.services.users.search(search=email))
        assert total == 1, "the same account the second time"


def test_an_existing_account_is_linked_by_its_verified_address_and_kept_after_the_address_changes(
    make_app: AppFactory, provider: str
) -> None:
    with make_app(SATCHEL_SIGNUP="closed", OIDC_ISSUER=provider, **CLIENT) as app:
        root, ann = make_admin(app), app.account()
        person(provider, f"ann-{ann.id}", ann.email, verified=True)
        assert sign_in(app, provider, f"ann-{ann.id}").status_code == 303 and signed_in_as(app) == ann.email
        (linked,) = audit(app, root, action="account.identity_linked", user=ann.email)
        assert linked["details"] == {"method": "oidc", "issuer": provider}
        person(provider, f"ann-{ann.id}", f"ann-new-{ann.id}@elsewhere.example", verified=True)
        assert sign_in(app, provider, f"ann-{ann.id}").status_code == 303 and signed_in_as(app) == ann.email


def test_an_unverified_address_is_refused_with_a_page_that_says_why(make_app: AppFactory, provider: str) -> None:
    with make_app(SATCHEL_SIGNUP="open", OIDC_ISSUER=provider, **CLIENT) as app:
        ann = app.account()
        person(provider, f"mallory-{ann.id}", ann.email, verified=False)
        refused = sign_in(app, provider, f"mallory-{ann.id}")
        assert refused.status_code == 403 and "did not say it verified your email address" in refused.text
        assert "Signing in with Example ID did not work" in refused.text and signed_in_as(app) is None


def test_closed_refuses_a_new_person_and_invite_needs_their_invitation(make_app: AppFactory, provider: str) -> None:
    with make_app(SATCHEL_SIGNUP="closed", OIDC_ISSUER=provider, **CLIENT) as app:
        root = make_admin(app)
        email = f"nina-{root.id}@example.test"
        person(provider, f"nina-{root.id}", email, verified=True)
        refused = sign_in(app, provider, f"nina-{root.id}")
        assert refused.status_code == 403 and "Sign-up is closed" in refused.text and signed_in_as(app) is None
    with make_app(SATCHEL_SIGNUP="invite", OIDC_ISSUER=provider, **CLIENT) as app:
        refused = sign_in(app, provider, f"nina-{root.id}")
        assert refused.status_code == 403 and "by invitation" in refused.text
        invited = app.client.post("/api/admin/invitations", json={"email": email, "is_admin": True}, headers=root.auth)
        assert invited.status_code == 201, invited.text
        assert sign_in(app, provider, f"nina-{root.id}").status_code == 303 and signed_in_as(app) == email
        (accepted,) = audit(app, root, action="account.invitation_accepted", user=email)
        assert accepted["details"]["method"] == "oidc" and accepted["details"]["is_admin"] is True


def test_a_tampered_or_replayed_answer_signs_nobody_in(make_app: AppFactory, provider: str) -> None:
    with make_app(SATCHEL_SIGNUP="open", OIDC_ISSUER=provider, **CLIENT) as app:
        person(provider, "trent", "trent@example.test", verified=True)
        tampered = sign_in(app, provider, "trent", state="x" * 43)
        assert tampered.status_code == 400 and "did not start in this browser" in tampered.text
        assert signed_in_as(app) is None
        denied = app.client.get("/auth/oidc/callback", params={"error": "access_denied"}, headers=HTML)
        assert denied.status_code == 400 and "<!doctype html>" in denied.text.lower()
        wrong_code = sign_in(app, provider, "trent", code="not-a-code-the-provider-gave")
        assert wrong_code.status_code == 400 and "did not sign you in" in wrong_code.text


def test_the_button_and_its_routes_exist_only_with_a_provider(make_app: AppFactory) -> None:
    with make_app() as app:
        assert "sign-in-with-provider" not in app.client.get("/login", headers=HTML).text
        assert app.client.get("/auth/oidc", headers=HTML).status_code == 404
        assert app.client.get("/auth/oidc/callback", headers=HTML).status_code == 404


def test_a_sign_in_goes_back_where_it_was_asked_for_and_never_off_site(make_app: AppFactory, provider: str) -> None:
    with make_app(SATCHEL_SIGNUP="open", OIDC_ISSUER=provider, **CLIENT) as app:
        person(provider, "vera", "vera@example.test", verified=True)
        for asked, landed in (("/shares", "/shares"), ("//evil.example/", "/files")):
            app.client.cookies.clear()
            sent = app.client.get("/auth/oidc", params={"next": asked}, headers=HTML, follow_redirects=False)
            back = urlsplit(authorize(sent.headers["location"], "vera"))
            done = app.client.get(f"{back.path}?{back.query}", headers=HTML, follow_redirects=False)
            assert done.status_code == 303 and done.headers["location"] == landed


def test_a_provider_that_is_down_is_a_readable_503_page(make_app: AppFactory) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    with make_app(OIDC_ISSUER=nowhere, **CLIENT) as app:
        down = app.client.get("/auth/oidc", headers=HTML)
        assert down.status_code == 503 and down.headers["retry-after"]
        assert "identity provider" in down.text and "<!doctype html>" in down.text.lower()
        assert app.client.get("/login", headers=HTML).status_code == 200, "password sign-in goes on"
