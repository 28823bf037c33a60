"""Invitations against in-memory fakes: a link by email that opens one account, once, while it lasts, under a
sign-up policy that takes invitations; and the mail job that carries it, which never holds the link itself."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from satchel.domain.accounts import (
    EmailTaken,
    InvalidCredentials,
    InvitationsClosed,
    SignupDisabled,
    SignupMode,
    SignupPolicy,
    User,
)
from satchel.domain.errors import InvalidInput
from satchel.domain.invitations import (
    AlreadyHasAccount,
    InvitationClosed,
    InvitationExpired,
    InvitationPending,
    InvitationRevoked,
    InvitationUsed,
    NoSuchInvitation,
    token_hash,
)
from satchel.ports.mail import Message
from satchel.services.accounts import Accounts
from satchel.services.background import Background
from satchel.services.invitations import Invitations, NewInvitation

from support.fakes import FakeClock, FakeDatabase, FakePasswordHasher, FakeRateLimiter, InMemoryObjectStore

PASSWORD = "correct horse battery staple"
KEY = b"the server's SECRET_KEY, as bytes"
QUOTA = 7_000


class Outbox:
    """A mailer that keeps what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[Message] = []

    def send(self, message: Message) -> None:
        self.sent.append(message)


class World:
    def __init__(self, signup: SignupMode = "invite", *, key: bytes = KEY) -> None:
        self.clock = FakeClock()
        self.db = FakeDatabase(self.clock)
        policy = SignupPolicy(signup)
        hasher = FakePasswordHasher()
        self.accounts = Accounts(
            self.db.uow, hasher, FakeRateLimiter(), default_quota=QUOTA, signup=policy, clock=self.clock
        )
        self.invitations = Invitations(
            self.db.uow, hasher, signup=policy, key=key, days=7, default_quota=QUOTA, clock=self.clock
        )
        self.outbox = Outbox()
        self.background = Background(
            self.db.uow, InMemoryObjectStore(), self.outbox, scanner=None, thumbnailer=None,  # type: ignore[arg-type]
            base_url="https://files.example.test", invitation_key=key, clock=self.clock,
        )  # fmt: skip
        self.root = asyncio.run(self.accounts.create_user("root@example.test", PASSWORD, is_admin=True))

    def invite(self, email: str = "new@example.test", **options: Any) -> NewInvitation:
        return asyncio.run(self.invitations.invite(email, actor=self.root, client="10.0.0.1", **options))

    def accept(self, token: str, password: str = PASSWORD) -> User:
        return asyncio.run(self.invitations.accept(token, password, client="10.0.0.9"))

    def mail_jobs(self) -> list[Any]:
        return [job for job in self.db.tables.jobs.values() if job.payload.get("notice") == "invitation"]

    def send(self, job: Any) -> str:
        return str(asyncio.run(self.background.mail(job.id, job.payload)))

    def actions(self) -> list[str]:
        return [event.action for event in self.db.audit]


@pytest.fixture
def world() -> World:
    return World()


# --- inviting -----------------------------------------------------------------------------------


def test_an_invitation_is_written_with_its_mail_job_and_event_and_keeps_no_link(world: World) -> None:
    new = world.invite("  New@Example.TEST ", is_admin=True)

    stored = world.db.invitations[new.invitation.id]
    assert (stored.email, stored.is_admin, stored.invited_by_email) == ("new@example.test", True, "root@example.test")
    assert stored.expires_at == world.clock.now + timedelta(days=7)
    assert world.db.tables.invitation_hashes[stored.id] == token_hash(new.token)
    [job] = world.mail_jobs()
    assert (job.queue, set(job.payload)) == ("mail", {"notice", "invitation_id", "nonce"})
    assert new.token not in repr(world.db.tables), "neither the invitation, its job nor its event holds the link"
    event = world.db.audit[-1]
    assert (event.action, event.actor_id, event.subject, event.client) == (
        "admin.user_invited", world.root.id, f"invitation:{stored.id}", "10.0.0.1",
    )  # fmt: skip
    assert (event.details["address"], event.details["is_admin"]) == ("new@example.test", True)


def test_the_mail_carries_the_link_the_inviter_was_given(world: World) -> None:
    new = world.invite()
    [job] = world.mail_jobs()

    assert world.send(job) == "sent"
    [mail] = world.outbox.sent
    assert mail.to == ("new@example.test",) and mail.subject == "You are invited to Satchel"
    link = f"https://files.example.test/invite/{new.token}"
    assert link in mail.text and link in (mail.html or "")
    assert "root@example.test invited you" in mail.text and "works once" in mail.text


def test_an_address_with_an_account_or_an_invitation_waiting_is_refused(world: World) -> None:
    with pytest.raises(AlreadyHasAccount, match=r"root@example\.test already has an account") as taken:
        world.invite("ROOT@example.test")
    assert taken.value.status == 409
    world.invite("new@example.test")
    with pytest.raises(InvitationPending) as pending:
        world.invite("new@example.test")
    assert pending.value.status == 409
    assert len(world.db.invitations) == 1 and len(world.mail_jobs()) == 1


def test_an_address_is_checked_before_anything_is_written(world: World) -> None:
    with pytest.raises(InvalidInput):
        world.invite("not an address")
    assert world.db.invitations == {} and world.mail_jobs() == []


# --- accepting ------------------------------------------------------------------------------------


def test_accepting_opens_the_invited_account_with_the_default_quota_and_the_role_invited(world: World) -> None:
    new = world.invite(is_admin=True)

    user = world.accept(new.token)
    assert (user.email, user.is_admin, user.quota_bytes, user.disabled) == ("new@example.test", True, QUOTA, False)
    assert asyncio.run(world.accounts.sign_in("new@example.test", PASSWORD, client="x")).id == user.id
    assert world.db.invitations[new.invitation.id].status(world.clock.now) == "accepted"
    accepted = next(e for e in world.db.audit if e.action == "account.invitation_accepted")
    assert (accepted.actor_id, accepted.subject, accepted.client) == (user.id, f"user:{user.id}", "10.0.0.9")
    assert accepted.details["invitation_id"] == new.invitation.id and PASSWORD not in repr(accepted)


def test_an_invitation_link_works_once(world: World) -> None:
    new = world.invite()
    world.accept(new.token)

    with pytest.raises(InvitationUsed, match="already used"):
        world.accept(new.token, "another good password")
    with pytest.raises(InvitationUsed):
        asyncio.run(world.invitations.opened(new.token))
    assert [u.email for u in world.db.users.values()] == ["root@example.test", "new@example.test"]


def test_an_invitation_link_stops_working_when_it_expires(world: World) -> None:
    new = world.invite()
    world.clock.advance(days=7)

    with pytest.raises(InvitationExpired, match="expired") as expired:
        world.accept(new.token)
    assert expired.value.status == 410
    assert len(world.db.users) == 1


def test_a_weak_password_opens_nothing_and_leaves_the_link_working(world: World) -> None:
    new = world.invite()
    with pytest.raises(InvalidInput, match="at least 10 characters"):
        world.accept(new.token, "short")
    assert world.accept(new.token).email == "new@example.test"


def test_an_account_opened_meanwhile_at_the_address_makes_the_link_refuse(world: World) -> None:
    new = world.invite()
    asyncio.run(world.accounts.create_user("new@example.test", PASSWORD))

    with pytest.raises(EmailTaken, match="sign in instead"):
        world.accept(new.token, "a different password")
    with pytest.raises(InvalidCredentials):
        asyncio.run(world.accounts.sign_in("new@example.test", "a different password", client="x"))


@pytest.mark.parametrize("token", ["", "x", "a" * 42, "a" * 44, "!" * 43, "a" * 43])
def test_a_link_that_is_no_invitations_opens_nothing(world: World, token: str) -> None:
    world.invite()
    with pytest.raises(NoSuchInvitation) as unknown:
        world.accept(token)
    assert unknown.value.status == 404


def test_a_link_made_with_another_secret_key_opens_nothing(world: World) -> None:
    world.invite()
    [job] = world.mail_jobs()
    other = World(key=b"another server's key")
    other.db.tables = world.db.tables  # the same rows, read by a process with another SECRET_KEY

    assert other.send(job) == "skipped", "its link would not match the invitation: nothing goes out"
    assert other.outbox.sent == []


# --- re-sending and withdrawing ---------------------------------------------------------------------


def test_re_sending_gives_a_new_link_for_the_full_time_and_kills_the_old_link_and_its_mail(world: World) -> None:
    first = world.invite()
    world.clock.advance(days=8)  # expired: may still be sent again
    second = asyncio.run(world.invitations.resend(first.invitation.id, actor=world.root))

    assert second.token != first.token
    assert second.invitation.expires_at == world.clock.now + timedelta(days=7)
    old_job, new_job = world.mail_jobs()
    assert world.send(old_job) == "skipped", "an older mail still waiting must not carry a dead link"
    assert world.send(new_job) == "sent" and second.token in world.outbox.sent[0].text
    with pytest.raises(NoSuchInvitation):
        world.accept(first.token)
    assert world.accept(second.token).email == "new@example.test"
    assert world.actions()[-3:] == ["admin.user_invited", "admin.invitation_resent", "account.invitation_accepted"]


def test_a_withdrawn_invitation_refuses_its_link_and_its_mail(world: World) -> None:
    new = world.invite()
    asyncio.run(world.invitations.revoke(new.invitation.id, actor=world.root))
    asyncio.run(world.invitations.revoke(new.invitation.id, actor=world.root))  # twice: nothing more happens

    with pytest.raises(InvitationRevoked, match="withdrawn"):
        world.accept(new.token)
    [job] = world.mail_jobs()
    assert world.send(job) == "skipped"
    assert world.actions().count("admin.invitation_revoked") == 1
    with pytest.raises(InvitationClosed):
        asyncio.run(world.invitations.resend(new.invitation.id))


def test_an_accepted_invitation_can_be_neither_withdrawn_nor_sent_again(world: World) -> None:
    new = world.invite()
    world.accept(new.token)
    with pytest.raises(InvitationClosed, match="disable the account instead"):
        asyncio.run(world.invitations.revoke(new.invitation.id))
    with pytest.raises(InvitationClosed):
        asyncio.run(world.invitations.resend(new.invitation.id))


def test_invitations_list_newest_first_by_state(world: World) -> None:
    waiting = world.invite("a@example.test")
    world.clock.advance(minutes=1)
    used = world.invite("b@example.test")
    world.accept(used.token)
    world.clock.advance(minutes=1)
    withdrawn = world.invite("c@example.test")
    asyncio.run(world.invitations.revoke(withdrawn.invitation.id))

    every, total = asyncio.run(world.invitations.list())
    assert total == 3 and [i.email for i in every] == ["c@example.test", "b@example.test", "a@example.test"]
    for status, email in (("pending", "a@example.test"), ("accepted", "b@example.test"), ("revoked", "c@example.test")):
        found, count = asyncio.run(world.invitations.list(status=status))
        assert count == 1 and found[0].email == email
    assert waiting.invitation.status(world.clock.now) == "pending"


# --- the sign-up policy -----------------------------------------------------------------------------


@pytest.mark.parametrize("signup", ["open", "invite"])
def test_invitations_work_under_open_and_invite(signup: SignupMode) -> None:
    world = World(signup)
    assert world.accept(world.invite().token).email == "new@example.test"


def test_under_closed_nobody_is_invited_and_links_made_before_refuse() -> None:
    before = World("invite")
    new = before.invite()
    closed = World("closed")
    closed.db.tables = before.db.tables  # the same database, after the operator closed sign-up

    with pytest.raises(InvitationsClosed, match="create the account with a password instead") as inviting:
        closed.invite("other@example.test")
    assert inviting.value.status == 409
    with pytest.raises(SignupDisabled, match="invitation links included") as opening:
        closed.accept(new.token)
    assert opening.value.status == 403
    with pytest.raises(InvitationsClosed):
        asyncio.run(closed.invitations.resend(new.invitation.id))
    assert len(closed.db.users) == 1
