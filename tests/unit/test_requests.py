"""Upload requests: the aggregate's rules, and the use cases on in-memory fakes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from satchel.domain.accounts import QuotaExceeded, User
from satchel.domain.errors import InvalidInput, NotFound, TooManyAttempts
from satchel.domain.requests import (
    RequestExpired,
    RequestFull,
    RequestPasswordRequired,
    RequestRevoked,
    RequestTerms,
    RequestTooLarge,
    UploadNotFromPage,
    UploadRequest,
)
from satchel.services.files import Files
from satchel.services.requests import Credentials, OpenRequest, Requests

from support.fakes import FakeClock, FakeDatabase, FakePasswordHasher, FakeRateLimiter, InMemoryObjectStore

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def a_request(**changes: object) -> UploadRequest:
    values: dict[str, object] = dict(
        id=1, token="t" * 32, owner_id=1, created_at=NOW, expires_at=NOW + timedelta(days=1), max_files=None,
        max_bytes=None, received_files=0, received_bytes=0, password_hash=None, note=None,
    )  # fmt: skip
    return UploadRequest(**{**values, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"revoked_at": NOW}, RequestRevoked),
        ({"expires_at": NOW}, RequestExpired),
        ({"max_files": 2, "received_files": 2}, RequestFull),
        ({"max_bytes": 10, "received_bytes": 10}, RequestFull),
        ({"revoked_at": NOW, "expires_at": NOW}, RequestRevoked),  # the first reason is the one told
    ],
)
def test_a_request_that_ended_refuses_uploads_with_its_reason(changes: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        a_request(**changes).authorize_upload(NOW, unlocked=True)


def test_a_request_refuses_a_declared_size_past_what_it_still_takes() -> None:
    request = a_request(max_bytes=100, received_bytes=60)
    request.authorize_upload(NOW, unlocked=True, size=40)
    with pytest.raises(RequestTooLarge):
        request.authorize_upload(NOW, unlocked=True, size=41)


def test_a_password_request_refuses_until_unlocked() -> None:
    with pytest.raises(RequestPasswordRequired):
        a_request(password_hash="h").authorize_upload(NOW, unlocked=False)
    a_request(password_hash="h").authorize_upload(NOW, unlocked=True)


@pytest.mark.parametrize(
    "terms",
    [
        RequestTerms(timedelta(0)),
        RequestTerms(timedelta(days=31)),
        RequestTerms(timedelta(days=1), max_files=0),
        RequestTerms(timedelta(days=1), max_bytes=0),
        RequestTerms(timedelta(days=1), note="n" * 1001),
    ],
)
def test_terms_beyond_the_servers_limits_are_refused(terms: RequestTerms) -> None:
    with pytest.raises(InvalidInput):
        terms.validated(max_days=30)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


class World:
    def __init__(self, quota: int = 10_000) -> None:
        self.clock = FakeClock(NOW)
        self.db = FakeDatabase(self.clock)
        self.store = InMemoryObjectStore()
        self.limiter = limiter = FakeRateLimiter()
        files = Files(self.db.uow, self.store, limiter, max_upload_bytes=5_000, clock=self.clock)
        self.requests = Requests(
            self.db.uow, files, FakePasswordHasher(), limiter, max_days=30, default_days=7, clock=self.clock
        )
        self.owner = self.db.add_user("owner@example.com", quota=quota)

    def ask(self, password: str | None = None, **terms: int) -> OpenRequest:
        created = asyncio.run(self.requests.create(self.owner, self.requests.terms(None, **terms), password=password))
        return asyncio.run(self.requests.open(created.token))

    def send(self, opened: OpenRequest, name: str, data: bytes, credentials: Credentials | None = None) -> None:
        token = opened.request.token
        asyncio.run(
            self.requests.receive(token, name, chunks(data), credentials=credentials or Credentials(), client=IP)
        )

    def admit(self, opened: OpenRequest, credentials: Credentials, *, counted: bool = True) -> None:
        asyncio.run(self.requests.admit(opened.request, credentials, client=IP, counted=counted))


IP = "1.2.3.4"


def test_a_received_file_is_the_owners_with_its_quota_and_a_mail_job_in_one_transaction() -> None:
    world = World()
    opened = world.ask(max_files=3)
    world.send(opened, "scan.pdf", b"%PDF")
    [file] = world.db.files.values()
    assert file.owner_id == world.owner.id and file.name == "scan.pdf"
    assert world.db.users[world.owner.id].used_bytes == 4
    [job] = [j for j in world.db.tables.jobs.values() if j.kind == "mail"]
    assert job.payload == {"notice": "request_received", "request_id": opened.request.id, "file_id": file.id}
    assert world.db.tables.request_files[opened.request.id] == [file.id]


def test_a_refused_file_leaves_no_bytes_no_row_and_no_quota() -> None:
    world = World(quota=10)
    opened = world.ask(max_bytes=8)
    with pytest.raises(RequestTooLarge):
        world.send(opened, "nine.bin", b"x" * 9)
    world.send(opened, "eight.bin", b"x" * 8)
    with pytest.raises(RequestFull):  # 8 of 8 used: the request has nothing left to take
        world.send(opened, "one.bin", b"x")
    assert len(world.store.objects) == 1 and world.db.users[world.owner.id].used_bytes == 8


def test_the_owners_quota_limits_a_request_without_a_size_limit() -> None:
    world = World(quota=5)
    with pytest.raises(QuotaExceeded):
        world.send(world.ask(), "six.bin", b"x" * 6)
    assert world.store.objects == {}


def test_a_full_request_refuses_the_next_file() -> None:
    world = World()
    opened = world.ask(max_files=1)
    world.send(opened, "1.txt", b"1")
    with pytest.raises(RequestFull):
        world.send(opened, "2.txt", b"2")
    with pytest.raises(RequestFull):
        asyncio.run(world.requests.open(opened.request.token))


def test_the_take_refuses_a_file_the_request_had_room_for_when_it_was_looked_at() -> None:
    world = World()
    opened = world.ask(max_files=1)  # the view of an upload that started while the request had room
    world.send(opened, "1.txt", b"1")
    [stored] = world.db.files.values()

    async def record_a_second() -> None:
        async with world.db.uow() as uow:
            await world.requests.taking(opened.request)(uow, stored)

    with pytest.raises(RequestFull):
        asyncio.run(record_a_second())
    assert world.db.tables.upload_requests[opened.request.id].received_files == 1


def test_a_password_request_lets_in_its_password_or_the_page_of_a_session_that_gave_it() -> None:
    world = World()
    opened = world.ask(password="open sesame 42")
    world.admit(opened, Credentials(password="open sesame 42"))
    world.admit(opened, Credentials(unlocked=frozenset({opened.request.id}), from_page=True))
    for refused in (
        Credentials(),
        Credentials(password="nope"),
        Credentials(unlocked=frozenset({999}), from_page=True),
    ):
        with pytest.raises(RequestPasswordRequired):
            world.admit(opened, refused)
    with pytest.raises(UploadNotFromPage):  # another site's page, riding on the session that unlocked it
        world.admit(opened, Credentials(unlocked=frozenset({opened.request.id})))
    world.admit(world.ask(), Credentials(password="anything"))  # no password: nothing asked


def test_passwords_given_to_go_on_with_an_upload_do_not_count_against_the_guessing_limit() -> None:
    world = World()
    opened = world.ask(password="open sesame 42")
    key = f"request-password:{opened.request.id}:{IP}"
    for _ in range(20):  # one file in twenty requests
        world.admit(opened, Credentials(password="open sesame 42"), counted=False)
    assert world.limiter.hits[key] == 0
    for _ in range(5):
        world.admit(opened, Credentials(password="open sesame 42"))
    with pytest.raises(TooManyAttempts):  # starting files is what is counted, right or wrong
        world.admit(opened, Credentials(password="open sesame 42"))


def test_only_the_owner_sees_or_closes_a_request() -> None:
    world = World()
    opened = world.ask()
    stranger = User(
        id=999, email="x@example.com", password_hash="x", is_admin=False, disabled=False, quota_bytes=1,
        used_bytes=0, created_at=NOW,
    )  # fmt: skip
    with pytest.raises(NotFound):
        asyncio.run(world.requests.owned(stranger, opened.request.id))
    with pytest.raises(NotFound):
        asyncio.run(world.requests.revoke(stranger, opened.request.id))
    asyncio.run(world.requests.revoke(world.owner, opened.request.id))
    with pytest.raises(RequestRevoked):
        asyncio.run(world.requests.open(opened.request.token))
