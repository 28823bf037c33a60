"""Accounts as administrators manage them, against in-memory fakes: listed and searched, disabled and enabled,
made administrators or not, given a quota; every change on the trail, no administrator locking themselves out;
and the sign-up policy's rules."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from satchel.domain.accounts import (
    AccountDisabled,
    InvitationsClosed,
    NotAdmin,
    QuotaBelowUsage,
    SelfLockout,
    SignupByInvitation,
    SignupDisabled,
    SignupPolicy,
    User,
)
from satchel.domain.errors import InvalidInput, NotFound
from satchel.services.accounts import Accounts
from satchel.services.users import UserAdmin, UserChange

from support.fakes import FakeClock, FakeDatabase, FakePasswordHasher, FakeRateLimiter

PASSWORD = "correct horse battery staple"


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.db = FakeDatabase(self.clock)
        self.accounts = Accounts(
            self.db.uow, FakePasswordHasher(), FakeRateLimiter(), default_quota=1000, signup=SignupPolicy("open"),
            clock=self.clock,
        )  # fmt: skip
        self.users = UserAdmin(self.db.uow, clock=self.clock)
        self.root = self.add("root@example.test", is_admin=True)
        self.alice = self.add("alice@example.test")
        self.db.tables.audit.clear()  # each test reads the trail of what it did

    def add(self, email: str, *, is_admin: bool = False) -> User:
        return asyncio.run(self.accounts.create_user(email, PASSWORD, is_admin=is_admin))

    def change(self, who: int | str, actor: User | None = None, client: str | None = None, **change: object) -> User:
        return asyncio.run(self.users.change(who, UserChange(**change), actor=actor, client=client))  # type: ignore[arg-type]

    def events(self) -> list[tuple[str, int | None, str | None]]:
        return [(e.action, e.actor_id, e.subject) for e in self.db.audit]


@pytest.fixture
def world() -> World:
    return World()


def test_accounts_list_newest_first_searched_by_address_in_any_case_and_paged(world: World) -> None:
    world.add("bob@other.test")
    everyone, total = asyncio.run(world.users.search())
    assert total == 3 and [u.email for u in everyone] == ["bob@other.test", "alice@example.test", "root@example.test"]
    found, total = asyncio.run(world.users.search(search=" EXAMPLE.test "))
    assert total == 2 and [u.email for u in found] == ["alice@example.test", "root@example.test"]
    page, total = asyncio.run(world.users.search(limit=1, offset=1))
    assert total == 3 and [u.email for u in page] == ["alice@example.test"]


def test_disabling_ends_every_session_and_token_and_enabling_revives_neither(world: World) -> None:
    old_stamp = asyncio.run(world.accounts.sign_in(world.alice.email, PASSWORD, client="x")).session_stamp
    token = asyncio.run(world.accounts.create_token(world.alice, "laptop"))

    world.change(world.alice.id, world.root, "10.0.0.1", disabled=True)
    assert asyncio.run(world.accounts.active_user(world.alice.id, stamp=old_stamp)) is None
    assert asyncio.run(world.accounts.authenticate_token(token.secret)) is None
    world.change(world.alice.id, world.root, disabled=False)

    assert asyncio.run(world.accounts.active_user(world.alice.id, stamp=old_stamp)) is None, "as a new password"
    assert asyncio.run(world.accounts.authenticate_token(token.secret)) is None
    fresh = asyncio.run(world.accounts.sign_in(world.alice.email, PASSWORD, client="x"))
    assert asyncio.run(world.accounts.active_user(world.alice.id, stamp=fresh.session_stamp)) is not None
    disabled, enabled = (e for e in world.db.audit if e.action.startswith("admin."))
    assert (disabled.action, disabled.actor_id, disabled.client) == ("admin.user_disabled", world.root.id, "10.0.0.1")
    assert disabled.details == {"address": world.alice.email, "tokens_revoked": 1}
    assert (enabled.action, enabled.subject) == ("admin.user_enabled", f"user:{world.alice.id}")


def test_an_administrator_can_neither_disable_nor_demote_themselves(world: World) -> None:
    for change in ({"disabled": True}, {"is_admin": False}, {"is_admin": False, "quota_bytes": 5000}):
        with pytest.raises(SelfLockout) as refused:
            world.change(world.root.id, world.root, **change)
        assert refused.value.status == 409
    root = world.db.users[world.root.id]
    assert (root.is_admin, root.disabled, root.quota_bytes) == (True, False, 1000) and world.db.audit == []
    assert world.change(world.root.id, world.root, quota_bytes=5000).quota_bytes == 5000, "their own quota they may"


def test_another_administrator_may_demote_and_disable_one(world: World) -> None:
    second = world.add("second@example.test", is_admin=True)
    world.db.tables.audit.clear()
    world.change(world.root.id, second, is_admin=False)
    world.change(world.root.id, second, disabled=True)
    assert world.events() == [
        ("admin.admin_revoked", second.id, f"user:{world.root.id}"),
        ("admin.user_disabled", second.id, f"user:{world.root.id}"),
    ]


@pytest.mark.parametrize("first", [{"is_admin": False}, {"disabled": True}], ids=["demoted", "disabled"])
def test_an_administrator_restricted_since_their_request_was_authorised_changes_nothing(
    world: World, first: dict[str, bool]
) -> None:
    """Two administrators restricting each other: the second request was authorised before the first took its
    rights away, and is refused all the same, so an administrator always remains."""
    second = world.add("second@example.test", is_admin=True)
    authorised = (world.root, second)  # as each request read its administrator when it began
    world.change(second.id, authorised[0], **first)
    with pytest.raises((NotAdmin, AccountDisabled)):
        world.change(world.root.id, authorised[1], is_admin=False)
    assert world.db.users[world.root.id].is_admin and not world.db.users[world.root.id].disabled


def test_making_an_administrator_is_recorded_and_a_change_to_what_already_is_records_nothing(world: World) -> None:
    assert world.change(world.alice.email, world.root, is_admin=True).is_admin
    world.change(world.alice.email, world.root, is_admin=True, disabled=False, quota_bytes=1000)
    assert world.events() == [("admin.admin_granted", world.root.id, f"user:{world.alice.id}")]


def test_a_quota_is_set_never_below_what_the_account_uses_and_recorded_with_the_one_before(world: World) -> None:
    asyncio.run(_use(world, world.alice.id, 600))
    with pytest.raises(QuotaBelowUsage, match="already uses 600 bytes") as refused:
        world.change(world.alice.id, world.root, quota_bytes=599)
    assert refused.value.status == 409
    for nonsense in (0, -1, 2**63):
        with pytest.raises(InvalidInput):
            world.change(world.alice.id, world.root, quota_bytes=nonsense)
    assert world.db.users[world.alice.id].quota_bytes == 1000 and world.db.audit == []

    world.change(world.alice.id, world.root, quota_bytes=600)
    [event] = world.db.audit
    assert event.action == "admin.quota_changed"
    assert (event.details["quota_bytes"], event.details["previous_quota_bytes"]) == (600, 1000)


async def _use(world: World, user_id: int, size: int) -> None:
    async with world.db.uow() as uow:
        assert await uow.users.reserve_bytes(user_id, size)
        await uow.commit()


def test_a_change_of_several_parts_is_made_whole_or_not_at_all(world: World) -> None:
    asyncio.run(_use(world, world.alice.id, 600))
    with pytest.raises(QuotaBelowUsage):
        world.change(world.alice.id, world.root, disabled=True, is_admin=True, quota_bytes=10)
    alice = world.db.users[world.alice.id]
    assert (alice.disabled, alice.is_admin, alice.quota_bytes, world.db.audit) == (False, False, 1000, [])


def test_an_operator_at_the_command_line_changes_anyone_on_record_with_no_actor(world: World) -> None:
    world.change("ROOT@example.test", None, "command line", is_admin=False, disabled=True)
    root = world.db.users[world.root.id]
    assert not root.is_admin and root.disabled
    assert [(e.action, e.actor_id, e.actor_email, e.client) for e in world.db.audit] == [
        ("admin.admin_revoked", None, None, "command line"),
        ("admin.user_disabled", None, None, "command line"),
    ]


@pytest.mark.parametrize("who", [999, "nobody@example.test", "not an address"])
def test_changing_an_account_that_does_not_exist_is_not_found(world: World, who: int | str) -> None:
    with pytest.raises(NotFound):
        world.change(who, world.root, disabled=True)


def test_an_account_created_for_someone_is_recorded_with_who_created_it(world: World) -> None:
    made = asyncio.run(
        world.accounts.create_user("carol@example.test", PASSWORD, quota_bytes=5000, actor=world.root, client="c")
    )
    [event] = world.db.audit
    assert (event.action, event.actor_id, event.subject) == ("admin.user_created", world.root.id, f"user:{made.id}")
    assert event.details == {"address": "carol@example.test", "is_admin": False, "quota_bytes": 5000}
    assert PASSWORD not in repr(event)


def test_signing_up_is_recorded_as_the_new_accounts_own_doing(world: World) -> None:
    user = asyncio.run(world.accounts.sign_up("dave@example.test", PASSWORD, client="10.1.1.1"))
    [event] = world.db.audit
    assert (event.action, event.actor_id, event.subject, event.client) == (
        "account.signed_up", user.id, f"user:{user.id}", "10.1.1.1",
    )  # fmt: skip


def test_a_sign_in_is_remembered_as_the_accounts_last(world: World) -> None:
    assert world.db.users[world.alice.id].last_signed_in_at is None
    world.clock.advance(hours=2)
    asyncio.run(world.accounts.sign_in(world.alice.email, PASSWORD, client="x"))
    assert world.db.users[world.alice.id].last_signed_in_at == world.clock.now


# --- the rules themselves ---------------------------------------------------------------------------


def test_a_session_stamp_before_any_epoch_is_the_one_sessions_had_before_epochs_existed(world: World) -> None:
    user = world.db.users[world.alice.id]
    assert user.session_stamp == hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]
    user.session_epoch = 1
    assert user.session_stamp != hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


@pytest.mark.parametrize(
    ("mode", "sign_up", "invite", "links"),
    [
        ("open", None, None, None),
        ("invite", SignupByInvitation, None, None),
        ("closed", SignupDisabled, InvitationsClosed, SignupDisabled),
    ],
)
def test_each_sign_up_policy_allows_what_it_says(
    mode: str, sign_up: type[Exception] | None, invite: type[Exception] | None, links: type[Exception] | None
) -> None:
    policy = SignupPolicy(mode)  # type: ignore[arg-type]
    for check, refusal in (
        (policy.ensure_sign_up, sign_up),
        (policy.ensure_invitations, invite),
        (policy.ensure_invitation_links, links),
    ):
        if refusal is None:
            check()
        else:
            with pytest.raises(refusal):
                check()
    assert (policy.sign_up_open, policy.invitations_open) == (sign_up is None, invite is None)
