"""Sign-in through an identity provider against in-memory fakes: which account an identity reaches under each
sign-up policy, why a verified address matters, and what the provider's answer must carry. The provider itself
is a fake here; tests/integration/test_oidc.py runs the same flows against a real OpenID Connect provider."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from satchel.domain.accounts import AccountDisabled, SignupByInvitation, SignupDisabled, SignupMode, SignupPolicy, User
from satchel.domain.identities import (
    Identity,
    PendingSignIn,
    ProviderRefused,
    SignInExpired,
    SignInMismatch,
    SignInPlan,
    UnverifiedEmail,
    plan_sign_in,
)
from satchel.services.accounts import Accounts
from satchel.services.invitations import Invitations
from satchel.services.provider_sign_in import ProviderSignIn

from support.fakes import FakeClock, FakeDatabase, FakePasswordHasher, FakeRateLimiter

ISSUER = "https://id.example.test"
PASSWORD = "correct horse battery staple"
REDIRECT = "https://files.example.test/auth/oidc/callback"


class FakeProvider:
    """Vouches for whoever the test says, for any code; remembers what it was asked."""

    name = "Example ID"

    def __init__(self) -> None:
        self.identity_given = Identity(ISSUER, "sub-1", "ann@example.test", True)
        self.asked: list[tuple[str, PendingSignIn]] = []

    async def authorization_url(self, pending: PendingSignIn, redirect_uri: str) -> str:
        return f"{ISSUER}/authorize?state={pending.state}&redirect_uri={redirect_uri}"

    async def identity(self, code: str, pending: PendingSignIn, redirect_uri: str) -> Identity:
        self.asked.append((code, pending))
        return self.identity_given


class World:
    def __init__(self, signup: SignupMode = "open") -> None:
        self.clock = FakeClock()
        self.db = FakeDatabase(self.clock)
        self.provider = FakeProvider()
        policy, hasher = SignupPolicy(signup), FakePasswordHasher()
        self.accounts = Accounts(
            self.db.uow, hasher, FakeRateLimiter(), default_quota=1000, signup=policy, clock=self.clock
        )
        self.invitations = Invitations(
            self.db.uow, hasher, signup=policy, key=b"k", days=7, default_quota=1000, clock=self.clock
        )
        self.sign_in = ProviderSignIn(
            self.db.uow, hasher, self.provider, signup=policy, default_quota=1000, clock=self.clock
        )

    def says(self, subject: str = "sub-1", email: str | None = "ann@example.test", verified: bool = True) -> None:
        self.provider.identity_given = Identity(ISSUER, subject, email, verified)

    def through(self, state: str | None = None, code: str | None = "code", error: str | None = None) -> User:
        url, pending = asyncio.run(self.sign_in.begin(REDIRECT))
        assert f"state={pending.state}" in url
        given = pending.state if state is None else state
        return asyncio.run(
            self.sign_in.finish(pending, state=given, code=code, error=error, redirect_uri=REDIRECT, client="10.0.0.7")
        )

    def user(self, email: str = "ann@example.test") -> User:
        return asyncio.run(self.accounts.create_user(email, PASSWORD))

    def events(self, action: str) -> list[dict[str, object]]:
        return [{**e.details, "email": e.actor_email} for e in self.db.audit if e.action == action]


def test_under_open_a_new_verified_identity_opens_an_account_without_a_usable_password() -> None:
    world = World("open")
    user = world.through()
    assert user.email == "ann@example.test" and not user.is_admin and user.quota_bytes == 1000
    assert world.events("account.signed_up") == [{"method": "oidc", "email": "ann@example.test"}]
    assert world.events("account.signed_in") == [{"method": "oidc", "email": "ann@example.test"}]
    assert not user.password_hash.endswith(PASSWORD) and user.password_hash.startswith("hashed:")
    assert world.through().id == user.id, "the next sign-in finds the same account"
    assert len(world.db.tables.identities) == 1


def test_an_existing_account_is_linked_by_a_verified_address_and_found_by_subject_after_the_address_changes() -> None:
    world = World("closed")
    ann = world.user()
    assert world.through().id == ann.id
    [linked] = world.events("account.identity_linked")
    assert linked == {"method": "oidc", "issuer": ISSUER, "email": "ann@example.test"}
    world.says(email="ann@elsewhere.example", verified=False)  # changed at the provider, not yet verified
    assert world.through().id == ann.id, "the link, not the address, names the account"


@pytest.mark.parametrize("signup", ["open", "invite", "closed"])
def test_an_unverified_address_never_links_nor_opens_an_account(signup: SignupMode) -> None:
    world = World(signup)
    ann = world.user()
    world.says(verified=False)
    with pytest.raises(UnverifiedEmail):
        world.through()
    world.says(subject="sub-2", email="new@example.test", verified=False)
    with pytest.raises(UnverifiedEmail):
        world.through()
    world.says(subject="sub-3", email=None, verified=True)
    with pytest.raises(UnverifiedEmail):
        world.through()
    assert not world.db.tables.identities and [u.id for u in world.db.users.values()] == [ann.id]


def test_under_invite_a_new_identity_needs_an_invitation_to_its_address_which_it_uses_up() -> None:
    world = World("invite")
    with pytest.raises(SignupByInvitation):
        world.through()
    root = asyncio.run(world.accounts.create_user("root@example.test", PASSWORD, is_admin=True))
    invited = asyncio.run(world.invitations.invite("ann@example.test", is_admin=True, actor=root))
    user = world.through()
    assert user.is_admin, "invited as an administrator"
    assert world.db.invitations[invited.invitation.id].accepted_at == world.clock.now
    [accepted] = world.events("account.invitation_accepted")
    assert accepted["method"] == "oidc" and accepted["invited_by"] == "root@example.test"
    with pytest.raises(Exception, match="already used"):
        asyncio.run(world.invitations.accept(invited.token, PASSWORD))


def test_under_closed_a_new_identity_opens_nothing() -> None:
    world = World("closed")
    with pytest.raises(SignupDisabled):
        world.through()
    assert not world.db.users and not world.db.tables.identities


def test_a_disabled_account_is_refused_linked_or_not() -> None:
    world = World("open")
    ann = world.user()
    world.through()
    world.db.users[ann.id].disabled = True
    with pytest.raises(AccountDisabled):
        world.through()
    world.says(subject="sub-9")
    with pytest.raises(AccountDisabled):
        world.through()


def test_the_answer_must_carry_this_sign_ins_state_in_time_and_a_code() -> None:
    world = World("open")
    with pytest.raises(SignInMismatch):
        world.through(state="someone else's state")
    with pytest.raises(SignInMismatch):
        asyncio.run(world.sign_in.finish(None, state="s", code="c", error=None, redirect_uri=REDIRECT, client="x"))
    with pytest.raises(ProviderRefused):
        world.through(error="access_denied")
    with pytest.raises(ProviderRefused):
        world.through(code=None)
    _, pending = asyncio.run(world.sign_in.begin(REDIRECT))
    world.clock.advance(timedelta(minutes=11))
    with pytest.raises(SignInExpired):
        asyncio.run(
            world.sign_in.finish(pending, state=pending.state, code="c", error=None, redirect_uri=REDIRECT, client="x")
        )
    assert not world.provider.asked, "no code is exchanged for an answer that is not this sign-in's"


def test_each_sign_in_gets_its_own_state_nonce_and_verifier() -> None:
    now = FakeClock().now
    first, second = PendingSignIn.start(now), PendingSignIn.start(now)
    assert len({first.state, first.nonce, first.code_verifier, second.state, second.nonce}) == 5
    assert 43 <= len(first.code_verifier) <= 128, "what PKCE allows"


def test_the_plan_names_what_happens_for_each_case() -> None:
    identity = Identity(ISSUER, "s", "a@example.test", True)
    ann = User(1, "a@example.test", "h", False, False, 1, 0, FakeClock().now)
    open_, invite = SignupPolicy("open"), SignupPolicy("invite")
    assert plan_sign_in(identity, linked=ann, same_email=None, policy=invite, invited=False) is SignInPlan.SIGN_IN
    assert plan_sign_in(identity, linked=None, same_email=ann, policy=invite, invited=False) is SignInPlan.LINK
    assert plan_sign_in(identity, linked=None, same_email=None, policy=open_, invited=False) is SignInPlan.OPEN
    accept = plan_sign_in(identity, linked=None, same_email=None, policy=invite, invited=True)
    assert accept is SignInPlan.ACCEPT_INVITATION
