"""The Imports service against in-memory fakes: all of an import or none of it, and one link for all of it."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from satchel.domain.errors import InvalidInput
from satchel.services.files import Files
from satchel.services.imports import CLIENT, Imported, ImportRefused, Imports, ShareRequest, Source
from satchel.services.sharing import MAX_FILES_PER_SHARE, Sharing

from support.fakes import FakeClock, FakeDatabase, FakePasswordHasher, FakeRateLimiter, InMemoryObjectStore

MAX_UPLOAD = 1000


def source(name: str, data: bytes, *, size: int | None = None, fail_after: int | None = None) -> Source:
    """A file on disk as an import finds it: ``size`` is what it looked like, ``data`` what is read later."""

    async def read() -> AsyncIterator[bytes]:
        for at in range(0, len(data), 7):
            if fail_after is not None and at >= fail_after:
                raise InvalidInput(f"/srv/{name}: cannot be read (Input/output error).")
            yield data[at : at + 7]

    return Source(f"/srv/{name}", name, len(data) if size is None else size, read)


def unread(name: str, size: int = 10) -> Source:
    async def read() -> AsyncIterator[bytes]:
        pytest.fail(f"{name} was read although the import should have been refused first")
        yield b""

    return Source(f"/srv/{name}", name, size, read)


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.db = FakeDatabase(self.clock)
        self.store = InMemoryObjectStore()
        self.limiter = FakeRateLimiter()
        self.files = Files(self.db.uow, self.store, self.limiter, max_upload_bytes=MAX_UPLOAD, clock=self.clock)
        self.sharing = Sharing(
            self.db.uow, FakePasswordHasher(), self.limiter, max_days=30, default_days=7, clock=self.clock
        )
        self.imports = Imports(self.db.uow, self.files, self.sharing)
        self.alice = self.db.add_user("alice@example.com", quota=100)

    def run(
        self,
        *sources: Source,
        share: ShareRequest | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> Imported:
        return asyncio.run(self.imports.import_files("Alice@Example.com", sources, share=share, progress=progress))

    def assert_nothing_left(self) -> None:
        assert self.store.objects == {}, "no bytes"
        assert (self.db.files, self.db.shares, self.db.tables.jobs, self.db.audit) == ({}, {}, {}, []), "no rows"
        assert self.db.users[self.alice.id].used_bytes == 0


@pytest.fixture
def world() -> World:
    return World()


def test_an_import_stores_every_file_with_its_checksum_and_one_link_for_all_of_them(world: World) -> None:
    first, second = b"first file bytes", b"the second, a picture"
    share = ShareRequest(expires_in_hours=36, max_downloads=3, title="Trip", note="enjoy", password="open sesame")
    imported = world.run(source("a.txt", first), source("b.png", second), share=share)

    assert [(f.name, f.size, f.sha256) for f in imported.files] == [
        ("a.txt", len(first), hashlib.sha256(first).hexdigest()),
        ("b.png", len(second), hashlib.sha256(second).hexdigest()),
    ]
    assert [world.store.objects[f.storage_key] for f in imported.files] == [first, second]
    assert world.db.users[world.alice.id].used_bytes == len(first) + len(second)
    assert imported.share is not None
    link = world.db.shares[imported.share.share.id]
    assert link.file_ids == [f.id for f in imported.files]
    assert (link.max_downloads, link.title, link.note) == (3, "Trip", "enjoy")
    assert link.expires_at - link.created_at == timedelta(hours=36)
    assert link.password_hash == "hashed:open sesame", "the hasher's work, as for any link"
    assert [j.kind for j in world.db.tables.jobs.values()] == ["thumbnail"], "the picture gets its thumbnail job"
    assert [(e.action, e.client) for e in world.db.audit] == [
        ("file.uploaded", CLIENT),
        ("file.uploaded", CLIENT),
        ("share.created", CLIENT),
    ]
    assert world.db.commits == 1 + 1, "the account, then the whole import in one transaction"


def test_an_import_without_a_link_makes_none(world: World) -> None:
    imported = world.run(source("a.txt", b"bytes"))
    assert imported.share is None and world.db.shares == {}


def test_a_quota_that_cannot_hold_all_the_files_refuses_the_import_before_a_byte_is_read(world: World) -> None:
    with pytest.raises(ImportRefused, match=r"These 3 files take 120 B, more than the 100 B left of .*Nothing was"):
        world.run(unread("a.bin", 40), unread("b.bin", 40), unread("c.bin", 40))
    world.assert_nothing_left()


def test_a_file_that_grew_past_the_quota_while_the_import_ran_takes_the_files_before_it_away_too(
    world: World,
) -> None:
    """Sizes are checked before the first byte, but a file may change after it was looked at: the bytes that
    landed before it go again, and nothing is recorded."""
    with pytest.raises(ImportRefused, match=r"^/srv/b.bin: .*quota.* Nothing was imported\.$"):
        world.run(source("a.bin", b"a" * 60), source("b.bin", b"b" * 50, size=30))
    world.assert_nothing_left()


def test_a_read_that_fails_part_way_leaves_nothing_of_the_import(world: World) -> None:
    with pytest.raises(ImportRefused, match=r"/srv/b.bin: cannot be read \(Input/output error\)\. Nothing was"):
        world.run(source("a.bin", b"a" * 30), source("b.bin", b"b" * 30, fail_after=14), source("c.bin", b"c"))
    world.assert_nothing_left()


def test_a_failed_commit_leaves_no_bytes_behind(world: World) -> None:
    world.db.fail_commits = ConnectionError("the database went away")
    with pytest.raises(ConnectionError):
        world.run(source("a.bin", b"a" * 30), source("b.bin", b"b" * 30), share=ShareRequest())
    world.db.fail_commits = None
    world.assert_nothing_left()


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ((), "There are no files to import."),
        ((unread("ok.txt"), unread("empty.txt", 0)), "/srv/empty.txt: The file is empty"),
        ((unread("big.iso", MAX_UPLOAD + 1),), "/srv/big.iso: This file is larger than this server accepts."),
        ((unread(".."),), "/srv/..: Give the file a name."),
    ],
)
def test_what_an_import_refuses_before_reading_names_the_file_and_says_nothing_was_imported(
    world: World, sources: tuple[Source, ...], message: str
) -> None:
    with pytest.raises(ImportRefused) as refused:
        world.run(*sources)
    assert refused.value.message.startswith(message) and refused.value.message.endswith(" Nothing was imported.")
    world.assert_nothing_left()


def test_an_import_for_a_missing_or_disabled_account_is_refused(world: World) -> None:
    with pytest.raises(ImportRefused, match=r"No account for nobody@example\.com"):
        asyncio.run(world.imports.import_files("nobody@example.com", [unread("a.txt")]))
    world.db.users[world.alice.id].disabled = True
    with pytest.raises(ImportRefused, match="disabled"):
        world.run(unread("a.txt"))
    world.assert_nothing_left()


@pytest.mark.parametrize(
    ("share", "count", "message"),
    [
        (ShareRequest(expires_in_hours=31 * 24), 1, "at most 30 days"),
        (ShareRequest(title="two\nlines"), 1, "one line of text"),
        (ShareRequest(max_downloads=0), 1, "download limit"),
        (ShareRequest(), MAX_FILES_PER_SHARE + 1, f"between 1 and {MAX_FILES_PER_SHARE} files"),
    ],
)
def test_terms_one_link_cannot_have_are_refused_before_a_byte_is_read(
    world: World, share: ShareRequest, count: int, message: str
) -> None:
    world.db.users[world.alice.id].quota_bytes = 10**9
    with pytest.raises(ImportRefused, match=message):
        world.run(*(unread(f"{n}.txt", 1) for n in range(count)), share=share)
    world.assert_nothing_left()


def test_an_operators_import_is_not_held_to_the_upload_rate_limit(world: World) -> None:
    world.limiter.refusing = True
    world.db.users[world.alice.id].quota_bytes = 10**9
    imported = world.run(*(source(f"{n}.txt", b"x") for n in range(150)))
    assert len(imported.files) == len(world.db.files) == 150


def test_progress_counts_the_bytes_stored_of_all_the_files_up_to_the_last(world: World) -> None:
    events: list[tuple[str, int, int]] = []
    world.run(source("a.bin", b"a" * 20), source("b.bin", b"b" * 15), progress=lambda *e: events.append(e))
    assert events[-1] == ("bytes", 35, 35)
    assert [done for _, done, _ in events] == sorted(done for _, done, _ in events)
    assert {total for _, _, total in events} == {35}
