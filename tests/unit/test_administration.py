"""Administration against in-memory fakes: accounts, invitations, every user's files, shares, the trail and failed
jobs, for administrators only, each change going the owner's own way and recorded as the administrator's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
from typing import Any

import pytest

from satchel.domain.accounts import NotAdmin, SignupPolicy, User
from satchel.domain.errors import InvalidInput, NotFound
from satchel.domain.jobs import FAILED
from satchel.services.accounts import Accounts
from satchel.services.administration import Administration, People, SignupTerms, audit_filter
from satchel.services.files import Files
from satchel.services.invitations import Invitations
from satchel.services.jobs import JobsAdmin
from satchel.services.sharing import Sharing
from satchel.services.users import UserAdmin, UserChange

from support.fakes import FakeClock, FakeDatabase, FakePasswordHasher, FakeRateLimiter, InMemoryObjectStore


async def stream(data: bytes) -> AsyncIterator[bytes]:
    yield data


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.db = FakeDatabase(self.clock)
        self.store = InMemoryObjectStore()
        limiter = FakeRateLimiter()
        self.files = Files(self.db.uow, self.store, limiter, max_upload_bytes=10_000, clock=self.clock)
        self.sharing = Sharing(
            self.db.uow, FakePasswordHasher(), limiter, max_days=30, default_days=7, clock=self.clock
        )
        self.jobs = JobsAdmin(self.db.uow)
        policy = SignupPolicy("invite")
        hasher = FakePasswordHasher()
        accounts = Accounts(self.db.uow, hasher, limiter, default_quota=10_000, signup=policy, clock=self.clock)
        invitations = Invitations(
            self.db.uow, hasher, signup=policy, key=b"k" * 32, days=7, default_quota=10_000, clock=self.clock
        )
        users = UserAdmin(self.db.uow, clock=self.clock)
        people = People(accounts, users, invitations, SignupTerms(policy, 7, 10_000))
        self.admin = Administration(self.db.uow, self.files, self.sharing, self.jobs, people, clock=self.clock)
        self.root = self.add_user("root@example.com", is_admin=True)
        self.alice = self.add_user("alice@example.com")
        self.bob = self.add_user("bob@example.com")

    def add_user(self, email: str, *, is_admin: bool = False) -> User:
        return self.db.add_user(email, quota=10_000, is_admin=is_admin)

    def upload(self, owner: User, name: str, size: int) -> str:
        self.clock.advance(minutes=1)
        return asyncio.run(self.files.upload(owner, name, stream(b"x" * size))).id


@pytest.fixture
def world() -> World:
    return World()


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)


def every_use_case(world: World) -> list[Callable[[User], Coroutine[Any, Any, Any]]]:
    return [
        lambda u: world.admin.audit(u, audit_filter()),
        lambda u: world.admin.files(u),
        lambda u: world.admin.delete_file(u, "0" * 32),
        lambda u: world.admin.shares(u),
        lambda u: world.admin.revoke_share(u, 1),
        lambda u: world.admin.failed_jobs(u),
        lambda u: world.admin.retry_job(u, "job-1"),
        lambda u: world.admin.users(u),
        lambda u: world.admin.user(u, world.bob.id),
        lambda u: world.admin.create_user(u, "new@example.com", "a long enough password"),
        lambda u: world.admin.change_user(u, world.bob.id, UserChange(disabled=True)),
        lambda u: world.admin.invitations(u),
        lambda u: world.admin.invite(u, "new@example.com"),
        lambda u: world.admin.resend_invitation(u, 1),
        lambda u: world.admin.revoke_invitation(u, 1),
        lambda u: terms(world.admin.signup_terms(u)),
    ]


async def terms(value: SignupTerms) -> SignupTerms:
    return value  # the terms are read without I/O: wrapped so the refusal is checked like every other one


def test_every_admin_use_case_refuses_an_account_without_is_admin(world: World) -> None:
    for use_case in every_use_case(world):
        with pytest.raises(NotAdmin):
            run(use_case(world.alice))
    assert world.db.audit == [] and not world.db.invitations and not world.db.users[world.bob.id].disabled


def test_every_admin_use_case_refuses_a_disabled_administrator(world: World) -> None:
    world.root.disabled = True
    for use_case in every_use_case(world):
        with pytest.raises(Exception, match="disabled"):
            run(use_case(world.root))


def test_files_lists_every_users_files_with_their_owner_sorted_and_searched(world: World) -> None:
    world.upload(world.alice, "big.iso", 900)
    world.upload(world.bob, "notes.txt", 10)
    world.upload(world.alice, "photo.jpg", 50)

    newest, total = run(world.admin.files(world.root))
    assert total == 3 and (newest[0].file.name, newest[0].owner_email) == ("photo.jpg", "alice@example.com")
    by_size, _ = run(world.admin.files(world.root, sort="-size"))
    assert [o.file.name for o in by_size] == ["big.iso", "photo.jpg", "notes.txt"]
    bobs, total = run(world.admin.files(world.root, search="BOB@"))
    assert total == 1 and bobs[0].file.name == "notes.txt"
    named, _ = run(world.admin.files(world.root, search="phot"))
    assert [o.file.name for o in named] == ["photo.jpg"]
    page, total = run(world.admin.files(world.root, sort="name", limit=1, offset=1))
    assert total == 3 and [o.file.name for o in page] == ["notes.txt"]


def test_files_refuses_an_unknown_sort_and_absurd_pages(world: World) -> None:
    for kwargs in ({"sort": "owner"}, {"limit": 0}, {"limit": 201}, {"offset": -1}):
        with pytest.raises(InvalidInput):
            run(world.admin.files(world.root, **kwargs))


def test_deleting_anyones_file_frees_the_owners_quota_and_bytes_and_is_recorded(world: World) -> None:
    file_id = world.upload(world.alice, "big.iso", 900)
    key = world.db.files[file_id].storage_key

    run(world.admin.delete_file(world.root, file_id, client="10.0.0.1"))

    assert file_id not in world.db.files and key not in world.store.objects
    assert world.db.users[world.alice.id].used_bytes == 0
    event = world.db.audit[-1]
    assert (event.action, event.actor_email, event.subject, event.client) == (
        "admin.file_deleted",
        "root@example.com",
        f"file:{file_id}",
        "10.0.0.1",
    )
    assert event.details["owner_id"] == world.alice.id


def test_deleting_a_missing_file_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        run(world.admin.delete_file(world.root, "0" * 32))


def test_shares_lists_every_share_with_owner_files_and_filters_by_status(world: World) -> None:
    file_id = world.upload(world.alice, "report.pdf", 10)
    short = run(world.sharing.create(world.alice, [file_id], world.sharing.terms(1)))
    long = run(world.sharing.create(world.alice, [file_id], world.sharing.terms(48)))
    world.clock.advance(hours=2)

    every, total = run(world.admin.shares(world.root))
    assert total == 2 and every[0].owner_email == "alice@example.com" and every[0].file_names == ["report.pdf"]
    (expired,), _ = run(world.admin.shares(world.root, status="expired"))
    (active,), _ = run(world.admin.shares(world.root, status="active"))
    assert (expired.share.id, active.share.id) == (short.share.id, long.share.id)
    with pytest.raises(InvalidInput):
        run(world.admin.shares(world.root, status="lost"))


def test_revoking_anyones_share_ends_it_and_is_recorded(world: World) -> None:
    file_id = world.upload(world.bob, "notes.txt", 10)
    view = run(world.sharing.create(world.bob, [file_id], world.sharing.terms(24)))

    run(world.admin.revoke_share(world.root, view.share.id))

    assert world.db.shares[view.share.id].status(world.clock.now) == "revoked"
    assert world.db.audit[-1].action == "admin.share_revoked" and world.db.audit[-1].actor_id == world.root.id
    with pytest.raises(NotFound):
        run(world.admin.revoke_share(world.root, 999))


def test_failed_jobs_lists_only_parked_jobs_and_retry_puts_one_back(world: World) -> None:
    failed = run(world.jobs.enqueue("mail", {}, queue="mail"))
    run(world.jobs.enqueue("scan", {}, queue="scan"))
    world.db.tables.jobs[failed].status = FAILED

    assert [j.id for j in run(world.admin.failed_jobs(world.root))] == [failed]
    run(world.admin.retry_job(world.root, failed))
    assert run(world.admin.failed_jobs(world.root)) == []
    assert world.db.audit[-1].action == "job.retried"
    with pytest.raises(NotFound):
        run(world.admin.retry_job(world.root, failed))  # no longer failed


def test_audit_lists_newest_first_filtered_and_paged(world: World) -> None:
    first = world.upload(world.alice, "a.txt", 1)
    world.upload(world.bob, "b.txt", 1)
    run(world.files.delete(world.alice, first))

    events, total = run(world.admin.audit(world.root, audit_filter(), limit=2))
    assert total == 3 and [e.action for e in events] == ["file.deleted", "file.uploaded"]
    alices, total = run(world.admin.audit(world.root, audit_filter(email=" Alice@Example.com ")))
    assert total == 2 and {e.actor_email for e in alices} == {"alice@example.com"}
    (about,), _ = run(world.admin.audit(world.root, audit_filter(subject=f"file:{first}", action="file.deleted")))
    assert about.subject == f"file:{first}"
    recent, _ = run(world.admin.audit(world.root, audit_filter(since=world.clock.now)))  # since b.txt came
    assert [e.details["name"] for e in recent] == ["a.txt", "b.txt"]


def test_audit_filter_refuses_unknown_actions_and_naive_times(world: World) -> None:
    now = world.clock.now
    for kwargs in ({"action": "file.eaten"}, {"since": now.replace(tzinfo=None)}):
        with pytest.raises(InvalidInput):
            audit_filter(**kwargs)  # type: ignore[arg-type]


def test_an_audit_range_that_ends_where_or_before_it_starts_holds_nothing(world: World) -> None:
    world.upload(world.alice, "a.txt", 1)
    now = world.clock.now

    for until in (now, now - timedelta(hours=1)):
        assert run(world.admin.audit(world.root, audit_filter(since=now, until=until))) == ([], 0)


def test_prune_deletes_only_events_before_the_date(world: World) -> None:
    world.upload(world.alice, "old.txt", 1)
    world.clock.advance(days=40)
    world.upload(world.alice, "new.txt", 1)

    assert run(world.admin.prune(world.clock.now - timedelta(days=30))) == 1
    assert [e.details["name"] for e in world.db.audit] == ["new.txt"]
