"""The audit trail, against in-memory fakes: each change and its event are kept together or not at all, the
event is logged once kept, and no secret reaches either."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from satchel.domain.accounts import InvalidCredentials, SignupPolicy
from satchel.domain.audit import AuditEvent, AuditFilter
from satchel.domain.jobs import FAILED
from satchel.services.accounts import Accounts
from satchel.services.files import Files
from satchel.services.jobs import JobsAdmin
from satchel.services.sharing import Sharing
from satchel.services.users import UserAdmin, UserChange

from support.fakes import FakeClock, FakeDatabase, FakePasswordHasher, FakeRateLimiter, InMemoryObjectStore

PASSWORD = "correct horse battery"
CLIENT = "203.0.113.7"


async def stream(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.db = FakeDatabase(self.clock)
        self.store = InMemoryObjectStore()
        limiter = FakeRateLimiter()
        self.accounts = Accounts(
            self.db.uow, FakePasswordHasher(), limiter, default_quota=10_000, signup=SignupPolicy("open"),
            clock=self.clock,
        )  # fmt: skip
        self.files = Files(self.db.uow, self.store, limiter, max_upload_bytes=1000, clock=self.clock)
        self.sharing = Sharing(
            self.db.uow, FakePasswordHasher(), limiter, max_days=30, default_days=7, clock=self.clock
        )
        self.jobs = JobsAdmin(self.db.uow)
        self.users = UserAdmin(self.db.uow, clock=self.clock)
        self.alice = asyncio.run(self.accounts.create_user("alice@example.com", PASSWORD))
        self.db.tables.audit.clear()  # each test reads the trail of what it did, not of setting the world up

    def actions(self) -> list[str]:
        return [e.action for e in self.db.audit]

    def upload(self, name: str = "report.pdf", data: bytes = b"some bytes") -> str:
        return asyncio.run(self.files.upload(self.alice, name, stream(data), client=CLIENT)).id


@pytest.fixture
def world() -> World:
    return World()


def test_an_upload_is_recorded_with_its_owner_name_size_and_client(world: World) -> None:
    file_id = world.upload("report.pdf", b"12345")

    (event,) = world.db.audit
    assert (event.action, event.actor_id, event.actor_email) == ("file.uploaded", world.alice.id, "alice@example.com")
    assert (event.subject, event.client, event.at) == (f"file:{file_id}", CLIENT, world.clock.now)
    assert event.details == {"name": "report.pdf", "size": 5}


def test_an_upload_that_rolls_back_leaves_no_event_and_logs_none(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.db.fail_commits = RuntimeError("database went away")
    with caplog.at_level(logging.INFO, "satchel.audit"), pytest.raises(RuntimeError):
        world.upload()

    assert world.db.audit == [] and world.db.files == {}
    assert not [r for r in caplog.records if r.name == "satchel.audit"]


def test_a_kept_event_is_logged_as_audit_action_with_its_fields(world: World, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "satchel.audit"):
        file_id = world.upload("report.pdf")

    (record,) = [r for r in caplog.records if r.name == "satchel.audit"]
    assert record.getMessage() == "audit.file.uploaded"
    assert record.__dict__["subject"] == f"file:{file_id}" and record.__dict__["detail_name"] == "report.pdf"


def test_deleting_a_file_records_it_in_the_same_transaction(world: World) -> None:
    file_id = world.upload()
    asyncio.run(world.files.delete(world.alice, file_id, client=CLIENT))

    assert world.actions() == ["file.uploaded", "file.deleted"]
    assert world.db.audit[-1].subject == f"file:{file_id}" and world.db.audit[-1].details["size"] == len(b"some bytes")


def test_share_created_downloaded_and_revoked_are_recorded_without_token_or_password(world: World) -> None:
    file_id = world.upload()
    view = asyncio.run(
        world.sharing.create(world.alice, [file_id], world.sharing.terms(24), password="hunter22", client=CLIENT)
    )
    asyncio.run(world.sharing.take_download(view, view.files, unlocked=True, client="198.51.100.1"))
    asyncio.run(world.sharing.revoke(world.alice, view.share.id, client=CLIENT))

    assert world.actions() == ["file.uploaded", "share.created", "share.downloaded", "share.revoked"]
    created, downloaded, revoked = world.db.audit[1:]
    assert created.details["files"] == [file_id] and created.details["password"] is True
    assert (downloaded.subject, downloaded.client, downloaded.actor_id) == (
        f"share:{view.share.id}",
        "198.51.100.1",
        None,
    )
    assert downloaded.details == {"files": [file_id], "names": ["report.pdf"], "count": 1}
    assert revoked.subject == f"share:{view.share.id}"
    every_value = repr([e.__dict__ for e in world.db.audit])
    assert view.share.token not in every_value and "hunter22" not in every_value


def test_a_download_refused_at_the_count_is_not_recorded(world: World) -> None:
    file_id = world.upload()
    view = asyncio.run(world.sharing.create(world.alice, [file_id], world.sharing.terms(24, max_downloads=1)))
    asyncio.run(world.sharing.take_download(view, view.files, unlocked=True))
    with pytest.raises(Exception, match="download limit"):
        asyncio.run(world.sharing.take_download(view, view.files, unlocked=True))

    assert world.actions().count("share.downloaded") == 1


def test_sign_ins_and_failed_sign_ins_are_recorded_without_the_password(world: World) -> None:
    asyncio.run(world.accounts.sign_in("Alice@Example.com", PASSWORD, client=CLIENT))
    with pytest.raises(InvalidCredentials):
        asyncio.run(world.accounts.sign_in("alice@example.com", "wrong password!", client=CLIENT))
    with pytest.raises(InvalidCredentials):
        asyncio.run(world.accounts.sign_in("nobody@example.com", "whatever it is", client=CLIENT))

    signed_in, wrong, unknown = world.db.audit
    assert (signed_in.action, signed_in.actor_id, signed_in.client) == ("account.signed_in", world.alice.id, CLIENT)
    assert (wrong.action, wrong.actor_id, wrong.details) == (
        "account.sign_in_failed",
        world.alice.id,
        {"reason": "wrong password"},
    )
    assert (unknown.actor_id, unknown.actor_email, unknown.subject) == (None, "nobody@example.com", None)
    assert "wrong password!" not in repr([e.__dict__ for e in world.db.audit])


def test_a_disabled_account_signing_in_is_a_failure_on_record(world: World) -> None:
    asyncio.run(world.users.change("alice@example.com", UserChange(disabled=True)))
    world.db.tables.audit.clear()
    with pytest.raises(Exception, match="disabled"):
        asyncio.run(world.accounts.sign_in("alice@example.com", PASSWORD, client=CLIENT))

    assert [(e.action, e.details) for e in world.db.audit] == [("account.sign_in_failed", {"reason": "disabled"})]


def test_retrying_a_failed_job_is_recorded_with_who_did_it(world: World) -> None:
    job_id = asyncio.run(world.jobs.enqueue("mail", {"notice": "x"}, queue="mail"))
    world.db.tables.jobs[job_id].status = FAILED
    asyncio.run(world.jobs.retry(job_id, actor=world.alice, client=CLIENT))

    (event,) = world.db.audit
    assert (event.action, event.subject, event.actor_email) == ("job.retried", f"job:{job_id}", "alice@example.com")
    assert event.details == {"kind": "mail", "queue": "mail", "attempts": 0}


def test_an_unknown_action_is_a_programming_error_not_an_event(world: World) -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        AuditEvent.of("file.teleported", world.clock.now)


def test_a_filter_matches_by_action_email_subject_and_half_open_time_range(world: World) -> None:
    event = AuditEvent.of("file.uploaded", world.clock.now, email="a@example.com", subject="f1")
    now, hour = world.clock.now, timedelta(hours=1)

    assert AuditFilter(action="file.uploaded", actor_email="a@example.com", subject="f1").matches(event)
    assert AuditFilter(since=now, until=now + hour).matches(event)
    assert not AuditFilter(until=now).matches(event)
    assert not AuditFilter(action="file.deleted").matches(event)
    assert not AuditFilter(actor_email="b@example.com").matches(event)
