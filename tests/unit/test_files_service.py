"""The Files service against in-memory fakes: streamed upload, quota, names, ownership, listing."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from satchel.domain.accounts import AccountDisabled, QuotaExceeded, User
from satchel.domain.errors import InvalidInput, NotFound, TooManyAttempts
from satchel.domain.files import EmptyFile, StoredFile
from satchel.services.files import Files, SnippetTooLarge, UploadTooLarge

from support.fakes import FakeClock, FakeDatabase, FakeRateLimiter, InMemoryObjectStore

MAX_UPLOAD = 1000


async def stream(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


class Untouchable:
    """A request body that fails the test if anyone reads it."""

    def __aiter__(self) -> Untouchable:
        return self

    async def __anext__(self) -> bytes:
        pytest.fail("the upload read the body although it should have been refused first")


async def disconnecting(*chunks: bytes) -> AsyncIterator[bytes]:
    """A client that sends some bytes and then goes away."""
    for chunk in chunks:
        yield chunk
    raise ConnectionResetError("client went away")


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.db = FakeDatabase(self.clock)
        self.store = InMemoryObjectStore()
        self.limiter = FakeRateLimiter()
        self.files = Files(self.db.uow, self.store, self.limiter, max_upload_bytes=MAX_UPLOAD, clock=self.clock)
        self.alice = self.db.add_user("alice@example.com", quota=10 * MAX_UPLOAD)
        self.bob = self.db.add_user("bob@example.com", quota=10 * MAX_UPLOAD)

    def fresh(self, user: User) -> User:
        """A copy of the user as the database has it now."""
        return copy.deepcopy(self.db.users[user.id])

    def upload(
        self,
        owner: User,
        name: str = "report.pdf",
        chunks: AsyncIterator[bytes] | None = None,
        *,
        content_type: str | None = None,
        declared_size: int | None = None,
    ) -> StoredFile:
        body = stream(b"some bytes") if chunks is None else chunks
        return asyncio.run(self.files.upload(owner, name, body, content_type=content_type, declared_size=declared_size))

    def assert_nothing_stored(self) -> None:
        assert self.store.objects == {}
        assert self.db.files == {}
        assert self.fresh(self.alice).used_bytes == 0


@pytest.fixture
def world() -> World:
    return World()


# --- Upload ----------------------------------------------------------------------------------------


def test_upload_streams_the_bytes_and_records_size_checksum_and_type(world: World) -> None:
    chunks = [b"%PDF-1.7 ", b"x" * 300, b"", b"end"]
    data = b"".join(chunks)
    file = world.upload(world.alice, "report.pdf", stream(*chunks))

    assert world.store.objects[file.storage_key] == data
    assert (file.size, file.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert (file.name, file.content_type, file.owner_id) == ("report.pdf", "application/pdf", world.alice.id)
    assert world.db.files[file.id] == file
    assert world.fresh(world.alice).used_bytes == len(data)


def test_upload_stores_the_bytes_under_a_generated_key_not_the_name(world: World) -> None:
    file = world.upload(world.alice, "report.pdf")
    assert re.fullmatch(r"files/2025/01/[0-9a-f]{32}", file.storage_key)
    assert world.upload(world.alice, "report.pdf").storage_key != file.storage_key


def test_an_empty_file_is_refused_and_leaves_nothing_behind(world: World) -> None:
    with pytest.raises(EmptyFile):
        world.upload(world.alice, "empty.txt", stream(b"", b""))
    with pytest.raises(EmptyFile):
        world.upload(world.alice, "empty.txt", Untouchable(), declared_size=0)
    world.assert_nothing_stored()


@pytest.mark.parametrize(
    ("name", "declared", "stored"),
    [
        ("notes.txt", None, "text/plain"),
        ("photo.png", "application/octet-stream", "image/png"),  # a generic type is no information
        ("photo.png", "Image/JPEG; charset=binary", "image/jpeg"),  # the client's own type wins
        ("data.unknownext", None, "application/octet-stream"),
        ("data.unknownext", "nonsense", "application/octet-stream"),
    ],
)
def test_upload_takes_the_declared_content_type_or_guesses_it_from_the_name(
    world: World, name: str, declared: str | None, stored: str
) -> None:
    assert world.upload(world.alice, name, content_type=declared).content_type == stored


def test_an_upload_of_exactly_the_maximum_size_is_accepted(world: World) -> None:
    assert world.upload(world.alice, chunks=stream(b"x" * MAX_UPLOAD)).size == MAX_UPLOAD


def test_an_upload_over_the_maximum_size_is_refused_and_leaves_nothing(world: World) -> None:
    with pytest.raises(UploadTooLarge):
        world.upload(world.alice, chunks=stream(b"x" * 600, b"x" * 401))
    world.assert_nothing_stored()


def test_an_upload_over_the_remaining_quota_is_refused_and_leaves_nothing(world: World) -> None:
    small = world.db.add_user("small@example.com", quota=100)
    with pytest.raises(QuotaExceeded):
        world.upload(small, chunks=stream(b"x" * 60, b"x" * 41))
    assert world.store.objects == {}
    assert world.db.files == {}
    assert world.fresh(small).used_bytes == 0


def test_the_quota_counts_earlier_uploads(world: World) -> None:
    small = world.db.add_user("small@example.com", quota=100)
    world.upload(small, chunks=stream(b"x" * 70))
    with pytest.raises(QuotaExceeded):
        world.upload(world.fresh(small), chunks=stream(b"x" * 31))
    world.upload(world.fresh(small), chunks=stream(b"x" * 30))
    assert world.fresh(small).used_bytes == 100


@pytest.mark.parametrize(("declared", "error"), [(MAX_UPLOAD + 1, UploadTooLarge), (-1, InvalidInput)])
def test_a_bad_declared_size_is_refused_before_reading_the_body(
    world: World, declared: int, error: type[Exception]
) -> None:
    with pytest.raises(error):
        world.upload(world.alice, chunks=Untouchable(), declared_size=declared)
    world.assert_nothing_stored()


def test_a_declared_size_over_the_quota_is_refused_before_reading_the_body(world: World) -> None:
    small = world.db.add_user("small@example.com", quota=100)
    with pytest.raises(QuotaExceeded):
        world.upload(small, chunks=Untouchable(), declared_size=101)


def test_a_concurrent_upload_taking_the_room_first_refuses_the_upload_and_deletes_its_bytes(world: World) -> None:
    stale = world.fresh(world.alice)  # read before another upload used up almost all the quota
    world.db.users[world.alice.id].used_bytes = world.alice.quota_bytes - 5

    with pytest.raises(QuotaExceeded):
        world.upload(stale, chunks=stream(b"x" * 10))
    assert world.store.objects == {}
    assert world.db.files == {}
    assert world.fresh(world.alice).used_bytes == world.alice.quota_bytes - 5


def test_a_database_failure_after_the_bytes_landed_deletes_them(world: World) -> None:
    world.db.fail_commits = ConnectionError("database went away")
    with pytest.raises(ConnectionError):
        world.upload(world.alice)
    world.assert_nothing_stored()


def test_a_client_going_away_mid_upload_leaves_nothing(world: World) -> None:
    with pytest.raises(ConnectionResetError):
        world.upload(world.alice, chunks=disconnecting(b"x" * 100))
    world.assert_nothing_stored()


def test_a_failed_upload_deletes_the_part_a_store_kept(world: World) -> None:
    world.store.keep_partial = True
    with pytest.raises(UploadTooLarge):
        world.upload(world.alice, chunks=stream(b"x" * 600, b"x" * 600))
    world.assert_nothing_stored()


def test_an_upload_too_large_is_reported_as_such_even_when_the_store_wraps_the_error(world: World) -> None:
    world.store.wrap_errors = True
    with pytest.raises(UploadTooLarge):
        world.upload(world.alice, chunks=stream(b"x" * (MAX_UPLOAD + 1)))
    world.assert_nothing_stored()


def test_uploads_are_rate_limited(world: World) -> None:
    world.limiter.refusing = True
    with pytest.raises(TooManyAttempts):
        world.upload(world.alice, chunks=Untouchable())
    world.assert_nothing_stored()


def test_a_disabled_user_cannot_upload(world: World) -> None:
    world.alice.disabled = True
    with pytest.raises(AccountDisabled):
        world.upload(world.alice, chunks=Untouchable())


# --- File names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\alice\\report.pdf", "report.pdf"),
        ("bad\x00na\x1bme\x7f.txt\n", "badname.txt"),
        ("  spaced out.txt  ", "spaced out.txt"),
        ("café.txt", "café.txt"),
    ],
)
def test_file_names_lose_folders_and_control_characters(world: World, raw: str, clean: str) -> None:
    assert world.upload(world.alice, raw).name == clean


@pytest.mark.parametrize("raw", ["", "   ", ".", "..", "folder/", "../..", "\x00\x01\x02"])
def test_a_file_name_that_cleans_to_nothing_is_refused(world: World, raw: str) -> None:
    with pytest.raises(InvalidInput):
        world.upload(world.alice, raw, Untouchable())


def test_an_over_long_file_name_is_shortened_keeping_its_extension(world: World) -> None:
    name = world.upload(world.alice, "a" * 300 + ".tar.gz").name
    assert len(name) == 255
    assert name.endswith("a.gz")


# --- Owned files -----------------------------------------------------------------------------------


def test_details_show_the_file_and_its_shares(world: World) -> None:
    file = world.upload(world.alice)

    async def share_it() -> None:
        async with world.db.uow() as uow:
            await uow.shares.add(
                token="t", owner_id=world.alice.id, file_ids=[file.id], expires_at=world.clock() + timedelta(days=1),
                max_downloads=None, password_hash=None, note=None, now=world.clock(),
            )  # fmt: skip
            await uow.commit()

    asyncio.run(share_it())
    details = asyncio.run(world.files.details(world.alice, file.id))
    assert details.file == file
    assert [s.token for s in details.shares] == ["t"]


def test_another_users_file_is_not_found_for_details_rename_and_delete(world: World) -> None:
    file = world.upload(world.alice, "mine.txt")

    with pytest.raises(NotFound):
        asyncio.run(world.files.owned(world.bob, file.id))
    with pytest.raises(NotFound):
        asyncio.run(world.files.details(world.bob, file.id))
    with pytest.raises(NotFound):
        asyncio.run(world.files.rename(world.bob, file.id, "yours.txt"))
    with pytest.raises(NotFound):
        asyncio.run(world.files.delete(world.bob, file.id))

    assert world.db.files[file.id].name == "mine.txt"
    assert file.storage_key in world.store.objects


def test_a_missing_file_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        asyncio.run(world.files.details(world.alice, "no-such-file"))


def test_rename_cleans_and_keeps_the_new_name(world: World) -> None:
    file = world.upload(world.alice, "draft.txt")
    renamed = asyncio.run(world.files.rename(world.alice, file.id, "../final.txt"))
    assert renamed.name == "final.txt"
    assert world.db.files[file.id].name == "final.txt"


def test_rename_to_an_empty_name_is_refused(world: World) -> None:
    file = world.upload(world.alice, "draft.txt")
    with pytest.raises(InvalidInput):
        asyncio.run(world.files.rename(world.alice, file.id, " / "))
    assert world.db.files[file.id].name == "draft.txt"


def test_delete_removes_the_record_and_the_bytes_and_gives_back_the_quota(world: World) -> None:
    kept = world.upload(world.alice, "kept.txt", stream(b"k" * 10))
    gone = world.upload(world.alice, "gone.txt", stream(b"g" * 25))
    assert world.fresh(world.alice).used_bytes == 35

    asyncio.run(world.files.delete(world.alice, gone.id))

    assert list(world.db.files) == [kept.id]
    assert list(world.store.objects) == [kept.storage_key]
    assert world.fresh(world.alice).used_bytes == 10


# --- Listing ---------------------------------------------------------------------------------------


@pytest.fixture
def three_files(world: World) -> dict[str, StoredFile]:
    files = {}
    for name, size in [("b.txt", 30), ("c.txt", 10), ("a.txt", 20)]:
        files[name] = world.upload(world.alice, name, stream(b"x" * size))
        world.clock.advance(minutes=1)
    world.upload(world.bob, "bobs.txt")
    return files


def names(page: tuple[list[StoredFile], int]) -> list[str]:
    return [f.name for f in page[0]]


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        ("-created", ["a.txt", "c.txt", "b.txt"]),
        ("created", ["b.txt", "c.txt", "a.txt"]),
        ("name", ["a.txt", "b.txt", "c.txt"]),
        ("-name", ["c.txt", "b.txt", "a.txt"]),
        ("size", ["c.txt", "a.txt", "b.txt"]),
        ("-size", ["b.txt", "a.txt", "c.txt"]),
    ],
)
def test_list_sorts_the_owners_files(
    world: World, three_files: dict[str, StoredFile], sort: str, order: list[str]
) -> None:
    assert names(asyncio.run(world.files.list_owned(world.alice, sort=sort))) == order


def test_list_shows_the_newest_first_by_default(world: World, three_files: dict[str, StoredFile]) -> None:
    assert names(asyncio.run(world.files.list_owned(world.alice))) == ["a.txt", "c.txt", "b.txt"]


def test_list_paginates_and_counts_all_the_owners_files(world: World, three_files: dict[str, StoredFile]) -> None:
    first = asyncio.run(world.files.list_owned(world.alice, sort="name", limit=2, offset=0))
    second = asyncio.run(world.files.list_owned(world.alice, sort="name", limit=2, offset=2))
    beyond = asyncio.run(world.files.list_owned(world.alice, sort="name", limit=2, offset=4))

    assert (names(first), first[1]) == (["a.txt", "b.txt"], 3)
    assert (names(second), second[1]) == (["c.txt"], 3)
    assert (names(beyond), beyond[1]) == ([], 3)


@pytest.mark.parametrize(("limit", "offset"), [(0, 0), (201, 0), (10, -1)])
def test_list_refuses_a_page_out_of_range(world: World, limit: int, offset: int) -> None:
    with pytest.raises(InvalidInput):
        asyncio.run(world.files.list_owned(world.alice, limit=limit, offset=offset))


# --- Previews and snippets ---------------------------------------------------------------------------


def test_an_upload_records_the_type_its_first_bytes_are_previewed_as(world: World) -> None:
    picture = world.upload(world.alice, "x.txt", stream(b"\x89PNG\r\n", b"\x1a\n" + b"\0" * 500))
    assert picture.preview_type == "image/png", "from the bytes, across chunks, not from the name"
    page = world.upload(world.alice, "photo.png", stream(b"<html><script>alert(1)</script>"), content_type="image/png")
    assert page.preview_type == "none"
    assert world.db.files[page.id].preview_type == "none"


def test_bytes_already_stored_are_previewed_as_what_they_are_when_recorded(world: World) -> None:
    async def record() -> StoredFile:
        await world.store.put_stream("files/staged", stream(b"%PDF-1.7\n", b"..."))
        return await world.files.record(
            world.alice, "doc", "files/staged", size=12, sha256="0" * 64, content_type="application/octet-stream"
        )

    assert asyncio.run(record()).preview_type == "application/pdf"


def test_a_snippet_is_text_kept_as_a_file_and_previewed_as_text_whatever_it_says(world: World) -> None:
    text = b"<!doctype html><script>alert(1)</script>\n"
    snippet = asyncio.run(world.files.paste(world.alice, text, name="page.html"))
    assert (snippet.name, snippet.size, snippet.content_type, snippet.preview_type) == (
        "page.html", len(text), "text/plain", "text/plain",
    )  # fmt: skip
    assert snippet.sha256 == hashlib.sha256(text).hexdigest()
    assert world.store.objects[snippet.storage_key] == text
    assert world.fresh(world.alice).used_bytes == len(text)
    unnamed = asyncio.run(world.files.paste(world.alice, b"hi"))
    assert re.fullmatch(r"snippet \d{4}-\d\d-\d\d \d\d\.\d\d\.\d\d\.txt", unnamed.name)


@pytest.mark.parametrize(
    ("text", "refusal"),
    [(b"", EmptyFile), ("café".encode("latin-1"), InvalidInput), (b"x" * 1_000_001, SnippetTooLarge)],
    ids=["empty", "not utf-8", "over 1 MB"],
)
def test_a_snippet_that_is_not_text_is_refused_before_anything_is_stored(
    world: World, text: bytes, refusal: type[Exception]
) -> None:
    with pytest.raises(refusal):
        asyncio.run(world.files.paste(world.alice, text))
    world.assert_nothing_stored()
