"""The Accounts service against in-memory fakes: sign-up, sign-in, passwords and API tokens."""

from __future__ import annotations

import asyncio
import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satchel.domain.accounts import (
    MAX_TOKEN_NAME,
    AccountDisabled,
    EmailTaken,
    InvalidCredentials,
    SignupByInvitation,
    SignupDisabled,
    SignupMode,
    SignupPolicy,
    User,
    clean_token_name,
)
from satchel.domain.errors import DomainError, InvalidInput, NotFound, TooManyAttempts
from satchel.services.accounts import LOGIN_ATTEMPTS, TOKEN_PREFIX, Accounts, NewToken
from satchel.services.users import UserAdmin, UserChange
from satchel.web.api.schemas import TokenIn

from support.fakes import FakeClock, FakeDatabase, FakePasswordHasher, FakeRateLimiter

PASSWORD = "correct horse battery staple"
QUOTA = 5_000_000


class World:
    def __init__(self, *, signup: SignupMode = "open") -> None:
        self.clock = FakeClock()
        self.db = FakeDatabase(self.clock)
        self.limiter = FakeRateLimiter()
        self.accounts = Accounts(
            self.db.uow, FakePasswordHasher(), self.limiter, default_quota=QUOTA, signup=SignupPolicy(signup),
            clock=self.clock,
        )  # fmt: skip
        self.users = UserAdmin(self.db.uow, clock=self.clock)

    def sign_up(self, email: str = "alice@example.com", password: str = PASSWORD) -> User:
        return asyncio.run(self.accounts.sign_up(email, password))

    def sign_in(self, email: str = "alice@example.com", password: str = PASSWORD, client: str = "1.2.3.4") -> User:
        return asyncio.run(self.accounts.sign_in(email, password, client=client))

    def create_token(self, user: User, name: str = "laptop") -> NewToken:
        return asyncio.run(self.accounts.create_token(user, name))

    def authenticate(self, secret: str) -> User | None:
        return asyncio.run(self.accounts.authenticate_token(secret))

    def disable(self, email: str = "alice@example.com") -> None:
        asyncio.run(self.users.change(email, UserChange(disabled=True)))


@pytest.fixture
def world() -> World:
    return World()


# --- Sign-up ---------------------------------------------------------------------------------------


def test_sign_up_opens_an_account_with_the_default_quota(world: World) -> None:
    user = world.sign_up()
    assert world.db.users[user.id].email == "alice@example.com"
    assert (user.quota_bytes, user.used_bytes, user.is_admin, user.disabled) == (QUOTA, 0, False, False)


def test_sign_up_stores_only_the_password_hash(world: World) -> None:
    user = world.sign_up()
    assert world.db.users[user.id].password_hash == "hashed:" + PASSWORD


@pytest.mark.parametrize(("signup", "refusal"), [("invite", SignupByInvitation), ("closed", SignupDisabled)])
def test_sign_up_is_refused_unless_open_but_create_user_still_works(
    signup: SignupMode, refusal: type[DomainError]
) -> None:
    world = World(signup=signup)
    with pytest.raises(refusal):
        world.sign_up()
    assert world.db.users == {} and world.db.audit == []

    admin = asyncio.run(world.accounts.create_user("admin@example.com", PASSWORD, is_admin=True))
    assert world.db.users[admin.id].is_admin


def test_sign_up_normalizes_the_email(world: World) -> None:
    assert world.sign_up("  Alice@Example.COM \n").email == "alice@example.com"


def test_sign_up_refuses_an_email_already_taken_in_any_case(world: World) -> None:
    world.sign_up("alice@example.com")
    with pytest.raises(EmailTaken):
        world.sign_up("ALICE@example.com")
    assert len(world.db.users) == 1


@pytest.mark.parametrize("email", ["", "alice", "alice@", "@example.com", "alice@example", "a b@example.com"])
def test_sign_up_refuses_an_invalid_email(world: World, email: str) -> None:
    with pytest.raises(InvalidInput, match="email"):
        world.sign_up(email)


@pytest.mark.parametrize(
    "email", ["a\x00b@example.com", "alice@exa\x00mple.com", "a\x1bb@example.com", "a\x7fb@example.com",
              "a\x85b@example.com", "a\ud800b@example.com"],
)  # fmt: skip
def test_an_email_with_control_characters_is_invalid_input(world: World, email: str) -> None:
    with pytest.raises(InvalidInput, match="email"):
        world.sign_up(email)
    with pytest.raises(InvalidCredentials):
        world.sign_in(email)
    assert world.db.users == {}


@pytest.mark.parametrize("password", ["", "short", "nine char", "x" * 1025])
def test_sign_up_refuses_a_weak_or_absurd_password(world: World, password: str) -> None:
    with pytest.raises(InvalidInput, match="password"):
        world.sign_up(password=password)
    assert world.db.users == {}


# --- Sign-in ---------------------------------------------------------------------------------------


def test_sign_in_with_the_right_password_returns_the_user(world: World) -> None:
    user = world.sign_up()
    assert world.sign_in("ALICE@example.com ").id == user.id


@pytest.mark.parametrize(
    ("email", "password"),
    [("alice@example.com", PASSWORD + "!"), ("nobody@example.com", PASSWORD), ("not an email", PASSWORD)],
)
def test_sign_in_refuses_wrong_credentials_without_saying_which(world: World, email: str, password: str) -> None:
    world.sign_up()
    with pytest.raises(InvalidCredentials):
        world.sign_in(email, password)


def test_sign_in_to_a_disabled_account_is_refused(world: World) -> None:
    world.sign_up()
    world.disable()
    with pytest.raises(AccountDisabled):
        world.sign_in()


def test_sign_in_does_not_reveal_a_disabled_account_to_a_wrong_password(world: World) -> None:
    world.sign_up()
    world.disable()
    with pytest.raises(InvalidCredentials):
        world.sign_in(password="wrong password")


def test_sign_in_is_refused_while_rate_limited(world: World) -> None:
    world.sign_up()
    world.limiter.refusing = True
    with pytest.raises(TooManyAttempts) as caught:
        world.sign_in()
    assert caught.value.retry_after == world.limiter.retry_after


def test_sign_in_attempts_are_limited_per_email_and_client(world: World) -> None:
    world.sign_up()
    limit, _ = LOGIN_ATTEMPTS
    for _ in range(limit):
        with pytest.raises(InvalidCredentials):
            world.sign_in(password="a wrong guess", client="1.2.3.4")

    with pytest.raises(TooManyAttempts):
        world.sign_in(client="1.2.3.4")  # even the right password, once over the limit
    world.sign_in(client="5.6.7.8")


# --- Passwords -------------------------------------------------------------------------------------


def test_change_password_requires_the_current_password(world: World) -> None:
    user = world.sign_up()
    with pytest.raises(InvalidCredentials):
        asyncio.run(world.accounts.change_password(user, "not my password", "a brand new password"))
    assert world.db.users[user.id].password_hash == "hashed:" + PASSWORD


def test_change_password_replaces_the_password(world: World) -> None:
    user = world.sign_up()
    asyncio.run(world.accounts.change_password(user, PASSWORD, "a brand new password"))
    world.sign_in(password="a brand new password")
    with pytest.raises(InvalidCredentials):
        world.sign_in(password=PASSWORD)


def test_password_change_ends_sessions_stamped_with_the_old_password(world: World) -> None:
    user = world.sign_up()
    old_stamp = world.sign_in().session_stamp

    changed = asyncio.run(world.accounts.change_password(user, PASSWORD, "a brand new password"))

    assert asyncio.run(world.accounts.active_user(user.id, stamp=old_stamp)) is None
    assert changed.session_stamp != old_stamp
    active = asyncio.run(world.accounts.active_user(user.id, stamp=changed.session_stamp))
    assert active is not None and (active.id, active.password_hash) == (changed.id, changed.password_hash)
    assert world.sign_in(password="a brand new password").session_stamp == changed.session_stamp


@pytest.mark.parametrize("stamp", [None, "", "0" * 16])
def test_a_session_without_the_right_stamp_finds_no_user(world: World, stamp: str | None) -> None:
    user = world.sign_up()
    assert asyncio.run(world.accounts.active_user(user.id, stamp=stamp)) is None


def test_password_change_revokes_every_token_of_the_account_and_no_one_elses(world: World) -> None:
    alice = world.sign_up()
    laptop, script = world.create_token(alice, "laptop"), world.create_token(alice, "script")
    bobs = world.create_token(world.sign_up("bob@example.com"))

    asyncio.run(world.accounts.change_password(alice, PASSWORD, "a brand new password"))

    assert world.authenticate(laptop.secret) is None and world.authenticate(script.secret) is None
    assert world.db.tokens[laptop.token.id].revoked_at == world.clock()
    assert world.authenticate(bobs.secret) is not None


def test_a_refused_password_change_keeps_tokens_and_sessions(world: World) -> None:
    user = world.sign_up()
    new = world.create_token(user)
    with pytest.raises(InvalidCredentials):
        asyncio.run(world.accounts.change_password(user, "not my password", "a brand new password"))
    assert world.authenticate(new.secret) is not None
    assert asyncio.run(world.accounts.active_user(user.id, stamp=user.session_stamp)) is not None


def test_change_password_refuses_a_weak_new_password(world: World) -> None:
    user = world.sign_up()
    with pytest.raises(InvalidInput):
        asyncio.run(world.accounts.change_password(user, PASSWORD, "short"))
    world.sign_in(password=PASSWORD)


# --- Users -----------------------------------------------------------------------------------------


def test_a_disabled_user_is_no_longer_an_active_user(world: World) -> None:
    user = world.sign_up()
    stamp = user.session_stamp
    assert asyncio.run(world.accounts.active_user(user.id, stamp=stamp)) == user
    world.disable()
    assert asyncio.run(world.accounts.active_user(user.id, stamp=stamp)) is None
    assert asyncio.run(world.accounts.active_user(12345, stamp=stamp)) is None


def test_set_disabled_of_an_unknown_email_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.disable("nobody@example.com")


# --- API tokens ------------------------------------------------------------------------------------


def test_a_new_token_is_a_prefixed_secret_that_authenticates_its_user(world: World) -> None:
    user = world.sign_up()
    new = world.create_token(user)

    assert new.secret.startswith(TOKEN_PREFIX)
    assert len(new.secret) >= len(TOKEN_PREFIX) + 43  # 256 random bits in base64url
    assert new.token.prefix == new.secret[: len(TOKEN_PREFIX) + 6]
    authenticated = world.authenticate(new.secret)
    assert authenticated is not None and authenticated.id == user.id


def test_only_the_hash_of_a_token_is_stored(world: World) -> None:
    new = world.create_token(world.sign_up())
    assert world.db.token_hashes[new.token.id] == hashlib.sha256(new.secret.encode()).hexdigest()
    assert new.secret not in repr(world.db.tables)


def test_tokens_are_distinct(world: World) -> None:
    user = world.sign_up()
    assert len({world.create_token(user).secret for _ in range(20)}) == 20


@pytest.mark.parametrize("secret", ["", "sat_", "sat_not-a-real-token", "Bearer sat_x", "no-prefix"])
def test_an_unknown_or_malformed_token_authenticates_no_one(world: World, secret: str) -> None:
    world.create_token(world.sign_up())
    assert world.authenticate(secret) is None


def test_a_secret_without_the_prefix_is_refused_even_if_its_hash_matches(world: World) -> None:
    new = world.create_token(world.sign_up())
    assert world.authenticate(new.secret.removeprefix(TOKEN_PREFIX)) is None


def test_a_revoked_token_no_longer_authenticates(world: World) -> None:
    user = world.sign_up()
    new = world.create_token(user)
    asyncio.run(world.accounts.revoke_token(user, new.token.id))

    assert world.authenticate(new.secret) is None
    assert world.db.tokens[new.token.id].revoked_at == world.clock()


def test_revoking_another_users_token_is_not_found(world: World) -> None:
    alice = world.sign_up()
    bob = world.sign_up("bob@example.com")
    new = world.create_token(alice)
    with pytest.raises(NotFound):
        asyncio.run(world.accounts.revoke_token(bob, new.token.id))
    assert world.authenticate(new.secret) is not None


def test_revoking_a_token_twice_is_not_found(world: World) -> None:
    user = world.sign_up()
    new = world.create_token(user)
    asyncio.run(world.accounts.revoke_token(user, new.token.id))
    with pytest.raises(NotFound):
        asyncio.run(world.accounts.revoke_token(user, new.token.id))


def test_a_disabled_users_token_authenticates_no_one(world: World) -> None:
    new = world.create_token(world.sign_up())
    world.disable()
    assert world.authenticate(new.secret) is None


def test_using_a_token_records_when_it_was_last_used_to_the_minute(world: World) -> None:
    new = world.create_token(world.sign_up())
    first_use = world.clock()
    world.authenticate(new.secret)
    assert world.db.tokens[new.token.id].last_used_at == first_use

    world.clock.advance(seconds=30)
    world.authenticate(new.secret)
    assert world.db.tokens[new.token.id].last_used_at == first_use  # not written on every request

    world.clock.advance(minutes=2)
    world.authenticate(new.secret)
    assert world.db.tokens[new.token.id].last_used_at == world.clock()


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_a_token_needs_a_name_of_up_to_100_characters(world: World, name: str) -> None:
    with pytest.raises(InvalidInput):
        world.create_token(world.sign_up(), name)
    assert world.db.tokens == {}


def test_tokens_lists_a_users_tokens_newest_first(world: World) -> None:
    alice = world.sign_up()
    first = world.create_token(alice, "first")
    second = world.create_token(alice, " second ")
    world.create_token(world.sign_up("bob@example.com"), "bobs")

    listed = asyncio.run(world.accounts.tokens(alice))
    assert [(t.id, t.name) for t in listed] == [(second.token.id, "second"), (first.token.id, "first")]


def test_token_for_creates_a_token_for_an_account_by_email(world: World) -> None:
    user = world.sign_up()
    new = asyncio.run(world.accounts.token_for("Alice@example.com", "cli"))
    assert new.token.user_id == user.id
    with pytest.raises(NotFound):
        asyncio.run(world.accounts.token_for("nobody@example.com", "cli"))


@pytest.mark.parametrize(
    "name",
    [
        "laptop",
        "  backup job  ",
        "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f flag",
        "Laptop \u00e9t\u00e9 \u2603",
        "\U0006f72b",
        "a" * 100,
    ],
)
def test_a_token_name_of_characters_that_show_as_text_is_kept_trimmed(name: str) -> None:
    assert clean_token_name(name) == name.strip()


@pytest.mark.parametrize(
    "name",
    ["", "   ", "a" * 101, "line\u2028break", "zero\u200bwidth", "no\u00a0break", "nul\x00", "\ue000"],
    ids=["empty", "blank", "long", "separator", "format", "nbsp", "control", "private-use"],
)
def test_a_token_name_that_does_not_show_as_text_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        clean_token_name(name)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=MAX_TOKEN_NAME))
def test_the_api_documents_exactly_the_token_names_the_rule_keeps(name: str) -> None:
    pattern = TokenIn.model_json_schema()["properties"]["name"]["pattern"]
    try:
        clean_token_name(name)
        kept = True
    except InvalidInput:
        kept = False
    assert bool(re.fullmatch(pattern, name)) == kept
