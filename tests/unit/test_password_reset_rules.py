"""Password resets against in-memory fakes: asking answers the same whatever the address, a link goes out only
to an active account, and it sets a password once, while it lasts, ending every other link, session and token."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from satchel.domain.accounts import AccountDisabled, InvalidCredentials, User
from satchel.domain.errors import InvalidInput, TooManyAttempts
from satchel.domain.password_resets import PER_ADDRESS, PER_CLIENT, NoSuchReset, ResetExpired, ResetUsed
from satchel.ports.mail import Message
from satchel.services.accounts import Accounts
from satchel.services.background import Background
from satchel.services.password_resets import PasswordResets

from support.fakes import FakeClock, FakeDatabase, FakePasswordHasher, FakeRateLimiter, InMemoryObjectStore

PASSWORD = "correct horse battery staple"
NEW = "a new and longer passphrase"
KEY = b"the server's SECRET_KEY, as bytes"


class Outbox:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    def send(self, message: Message) -> None:
        self.sent.append(message)


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.db = FakeDatabase(self.clock)
        self.limiter = FakeRateLimiter()
        hasher = FakePasswordHasher()
        from satchel.domain.accounts import SignupPolicy

        self.accounts = Accounts(
            self.db.uow, hasher, self.limiter, default_quota=1000, signup=SignupPolicy("open"), clock=self.clock
        )
        self.resets = PasswordResets(self.db.uow, hasher, self.limiter, key=KEY, minutes=60, clock=self.clock)
        self.outbox = Outbox()
        self.background = Background(
            self.db.uow, InMemoryObjectStore(), self.outbox, scanner=None, thumbnailer=None,  # type: ignore[arg-type]
            base_url="https://files.example.test", resets=self.resets, clock=self.clock,
        )  # fmt: skip
        self.ann = asyncio.run(self.accounts.create_user("ann@example.test", PASSWORD))

    def ask(self, email: str = "ann@example.test", client: str = "10.0.0.1") -> None:
        asyncio.run(self.resets.request(email, client=client))

    def jobs(self) -> list[Any]:
        return [job for job in self.db.tables.jobs.values() if job.payload.get("notice") == "password_reset"]

    def deliver(self) -> list[str]:
        """Run every reset mail job once, as the worker would; the tokens of the links that went out."""
        tokens = []
        for job in self.jobs():
            before = len(self.outbox.sent)
            assert asyncio.run(self.background.mail(job.id, job.payload)) in ("sent", "skipped")
            if len(self.outbox.sent) > before:
                tokens.append(self.outbox.sent[-1].text.split("/password-reset/")[1].split()[0])
        return tokens

    def reset(self, token: str, password: str = NEW) -> User:
        return asyncio.run(self.resets.reset(token, password, client="10.0.0.9"))

    def sign_in(self, password: str) -> User:
        return asyncio.run(self.accounts.sign_in("ann@example.test", password, client="10.0.0.9"))

    def actions(self) -> list[str]:
        return [event.action for event in self.db.audit]


def test_asking_does_the_same_work_whatever_the_address_and_only_an_active_account_gets_mail() -> None:
    world = World()
    bob = asyncio.run(world.accounts.create_user("bob@example.test", PASSWORD))
    world.db.users[bob.id].disabled = True
    for email in ("ann@example.test", "nobody@example.test", "bob@example.test"):
        world.ask(email)
    jobs = world.jobs()
    assert [sorted(job.payload) for job in jobs] == [["client", "email", "nonce", "notice", "requested_at"]] * 3
    assert [job.queue for job in jobs] == ["mail"] * 3 and not world.db.tables.password_resets, "decided later"
    assert "password_reset_requested" not in " ".join(world.actions()), "nothing recorded while asking"

    assert len(world.deliver()) == 1
    [mail] = world.outbox.sent
    assert mail.to == ("ann@example.test",) and mail.subject == "Reset your Satchel password"
    assert "https://files.example.test/password-reset/" in mail.text and "until 2025-01-01 13:00 UTC" in mail.text
    assert world.actions().count("account.password_reset_requested") == 1, "only for the account that exists"
    [event] = [e for e in world.db.audit if e.action == "account.password_reset_requested"]
    assert (event.actor_email, event.client) == ("ann@example.test", "10.0.0.1")


def test_the_job_holds_no_link_and_a_rerun_sends_the_same_link_recording_it_once() -> None:
    world = World()
    world.ask()
    [job] = world.jobs()
    first = world.deliver()
    assert first[0] not in str(job.payload), "the job carries a nonce, not the link"
    assert world.deliver() == first and len(world.db.tables.password_resets) == 1
    assert world.actions().count("account.password_reset_requested") == 1


def test_a_link_sets_the_password_once_ending_sessions_tokens_and_every_other_link() -> None:
    world = World()
    token = asyncio.run(world.accounts.create_token(world.ann, "laptop"))
    world.ask()
    world.ask()
    first, second = world.deliver()
    stamp = world.ann.session_stamp

    user = world.reset(second, NEW)
    assert user.session_stamp != stamp and world.sign_in(NEW).id == world.ann.id
    with pytest.raises(InvalidCredentials):
        world.sign_in(PASSWORD)
    assert asyncio.run(world.accounts.authenticate_token(token.secret)) is None, "API tokens revoked"
    assert asyncio.run(world.accounts.active_user(world.ann.id, stamp=stamp)) is None, "other sessions ended"
    with pytest.raises(ResetUsed):
        world.reset(second, "yet another passphrase")
    with pytest.raises(ResetUsed):
        world.reset(first, "yet another passphrase")  # superseded: the other link died with this use
    [event] = [e for e in world.db.audit if e.action == "account.password_reset"]
    assert event.details == {"revoked_tokens": 1, "other_links_ended": 1} and event.client == "10.0.0.9"


def test_a_link_expires_and_a_weak_password_leaves_it_working() -> None:
    world = World()
    world.ask()
    [token] = world.deliver()
    with pytest.raises(InvalidInput, match="at least 10 characters"):
        world.reset(token, "short")
    world.clock.advance(minutes=59)
    assert asyncio.run(world.resets.opened(token)).email == "ann@example.test"
    world.clock.advance(minutes=1)
    with pytest.raises(ResetExpired):
        world.reset(token)
    assert world.sign_in(PASSWORD).id == world.ann.id


def test_a_mail_job_that_runs_after_the_link_expired_sends_nothing() -> None:
    world = World()
    world.ask()
    world.clock.advance(timedelta(hours=2))
    assert world.deliver() == [] and not world.outbox.sent


def test_a_changed_password_ends_the_links_asked_for_before() -> None:
    world = World()
    world.ask()
    [token] = world.deliver()
    asyncio.run(world.accounts.change_password(world.ann, PASSWORD, NEW))
    with pytest.raises(ResetUsed):
        world.reset(token, "yet another passphrase")


@pytest.mark.parametrize("token", ["", "x" * 43, "not a token at all", "a" * 42])
def test_a_token_no_link_made_is_no_such_link(token: str) -> None:
    world = World()
    with pytest.raises(NoSuchReset):
        asyncio.run(world.resets.opened(token))


def test_an_account_disabled_after_the_mail_cannot_use_its_link() -> None:
    world = World()
    world.ask()
    [token] = world.deliver()
    world.db.users[world.ann.id].disabled = True
    with pytest.raises(NoSuchReset):
        world.reset(token)
    assert not isinstance(NoSuchReset(), AccountDisabled), "it says nothing of the account"


def test_asking_is_limited_per_address_and_per_client_alike_for_unknown_addresses() -> None:
    world = World()
    per_address, _ = PER_ADDRESS
    for attempt in range(per_address):
        world.ask("nobody@example.test", client=f"10.0.1.{attempt}")
    with pytest.raises(TooManyAttempts):
        world.ask("nobody@example.test", client="10.0.2.1")
    per_client, _ = PER_CLIENT
    for attempt in range(per_client):
        world.ask(f"someone-{attempt}@example.test", client="10.0.3.1")
    with pytest.raises(TooManyAttempts):
        world.ask("someone-else@example.test", client="10.0.3.1")
    assert len(world.jobs()) == per_address + per_client, "nothing queued past a limit"


def test_an_address_that_is_none_is_refused_before_anything_is_counted() -> None:
    world = World()
    with pytest.raises(InvalidInput):
        world.ask("not an address")
    assert not world.limiter.hits and not world.jobs()
