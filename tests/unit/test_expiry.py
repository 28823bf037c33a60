"""The expiry sweep on in-memory fakes and a fake clock: ended links keep their records for the history window, and
so keep saying why they ended; the files their owners asked to remove go at once; after the window, the record too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from satchel.domain.errors import NotFound
from satchel.domain.files import StoredFile
from satchel.domain.sharing import ShareExpired, ShareRevoked, ShareUsedUp
from satchel.services.expiry import Expiry, PurgeReport
from satchel.services.files import Files
from satchel.services.sharing import ShareView, Sharing

from support.fakes import FakeClock, FakeDatabase, FakePasswordHasher, FakeRateLimiter, InMemoryObjectStore

HISTORY_DAYS = 30


async def stream(data: bytes) -> AsyncIterator[bytes]:
    yield data


class World:
    def __init__(self, history_days: int = HISTORY_DAYS) -> None:
        self.clock = FakeClock()
        self.db = FakeDatabase(self.clock)
        self.store = InMemoryObjectStore()
        limiter = FakeRateLimiter()
        self.files = Files(self.db.uow, self.store, limiter, max_upload_bytes=10_000, clock=self.clock)
        self.sharing = Sharing(
            self.db.uow, FakePasswordHasher(), limiter, max_days=30, default_days=7, clock=self.clock
        )
        self.expiry = Expiry(self.db.uow, self.store, history_days=history_days, clock=self.clock)
        self.alice = self.db.add_user("alice@example.com", quota=10**6)

    def upload(self, name: str = "report.pdf") -> StoredFile:
        return asyncio.run(self.files.upload(self.alice, name, stream(b"some bytes")))

    def share(self, *files: StoredFile, **terms: object) -> ShareView:
        made = self.sharing.terms(**terms)  # type: ignore[arg-type]
        return asyncio.run(self.sharing.create(self.alice, [f.id for f in files], made))

    def download(self, view: ShareView) -> None:
        asyncio.run(self.sharing.take_download(view, view.files, unlocked=True))

    def sweep(self, *, dry_run: bool = False) -> PurgeReport:
        return asyncio.run(self.expiry.purge_expired(dry_run=dry_run))

    def opened(self, view: ShareView) -> ShareView:
        return asyncio.run(self.sharing.open(view.share.token))

    def listed(self) -> dict[int, str]:
        views, _ = asyncio.run(self.sharing.list_owned(self.alice))
        return {v.share.id: v.share.status(self.clock()) for v in views}


def test_a_used_up_link_says_so_before_the_sweep_after_it_and_is_unknown_once_its_history_is_over() -> None:
    world = World()
    file = world.upload()
    # It lasts as long as its history (a link past its expiry says "expired" first, whatever else ended it).
    view = world.share(file, max_downloads=1, delete_files_when_done=True, expires_in_hours=24 * HISTORY_DAYS)
    world.download(view)

    with pytest.raises(ShareUsedUp):
        world.opened(view)
    report = world.sweep()
    assert report.shares == [view.share.id] and report.files == [file.id] and report.history == []
    assert file.storage_key not in world.store.objects, "the files its owner asked to remove are gone"
    with pytest.raises(ShareUsedUp):  # its record is kept, without files: the link still says why it ended
        world.opened(view)
    assert world.listed() == {view.share.id: "used up"}, "its owner still sees it, as ended"

    world.clock.advance(days=HISTORY_DAYS, seconds=-1)
    assert world.sweep().history == []
    with pytest.raises(ShareUsedUp):
        world.opened(view)
    world.clock.advance(seconds=1)
    assert world.sweep().history == [view.share.id]
    with pytest.raises(NotFound):
        world.opened(view)
    assert world.listed() == {}


@pytest.mark.parametrize(
    ("ending", "error"),
    [("expired", ShareExpired), ("revoked", ShareRevoked)],
)
def test_an_expired_or_revoked_link_keeps_its_reason_through_the_history_window(
    ending: str, error: type[Exception]
) -> None:
    world = World()
    view = world.share(world.upload(), expires_in_hours=1)
    if ending == "revoked":
        asyncio.run(world.sharing.revoke(world.alice, view.share.id))
    else:
        world.clock.advance(hours=1)
    swept_at = world.clock()
    assert world.sweep().shares == [view.share.id]
    world.clock.advance(days=10)
    with pytest.raises(error):
        world.opened(view)
    owned = asyncio.run(world.sharing.owned(world.alice, view.share.id))
    assert owned.share.forgotten_at(HISTORY_DAYS) == swept_at + timedelta(days=HISTORY_DAYS)
    assert len(owned.files) == 1, "its files stay: the owner did not ask to remove them"


def test_a_second_sweep_finds_nothing_to_do() -> None:
    world = World()
    view = world.share(world.upload(), max_downloads=1, delete_files_when_done=True)
    asyncio.run(world.sharing.revoke(world.alice, view.share.id))
    first = world.sweep()
    assert len(first.shares) == 1
    assert world.sweep() == PurgeReport(), "the kept record is not dealt with twice"


def test_a_file_another_open_link_still_shares_stays_when_its_first_link_ends() -> None:
    world = World()
    file = world.upload()
    ended = world.share(file, max_downloads=1, delete_files_when_done=True)
    world.share(file)  # open for a week
    world.download(ended)
    report = world.sweep()
    assert report.shares == [ended.share.id] and report.files == []
    assert file.storage_key in world.store.objects


def test_a_dry_run_tells_what_would_be_dealt_with_and_what_history_would_go_and_changes_nothing() -> None:
    world = World()
    old = world.share(world.upload("old.txt"), max_downloads=1, delete_files_when_done=True)
    world.download(old)
    world.sweep()
    world.clock.advance(days=HISTORY_DAYS + 1)
    fresh_file = world.upload("fresh.txt")
    fresh = world.share(fresh_file, max_downloads=1, delete_files_when_done=True)
    world.download(fresh)

    dry = world.sweep(dry_run=True)
    assert (dry.shares, dry.files, dry.history) == ([fresh.share.id], [fresh_file.id], [old.share.id])
    assert world.sweep(dry_run=True) == dry, "a dry run changes nothing"
    assert fresh_file.storage_key in world.store.objects
    with pytest.raises(ShareExpired):  # its week is over too by now, and an expiry is told first
        world.opened(old)
    assert world.sweep() == dry, "the real run does what the dry run said"


def test_with_no_history_an_ended_link_is_forgotten_at_the_first_sweep() -> None:
    world = World(history_days=0)
    view = world.share(world.upload(), max_downloads=1)
    world.download(view)
    assert world.sweep(dry_run=True).history == [view.share.id], "the dry run says so too"
    report = world.sweep()
    assert report.shares == report.history == [view.share.id]
    with pytest.raises(NotFound):
        world.opened(view)


def test_an_open_link_is_left_alone_by_the_sweep() -> None:
    world = World()
    view = world.share(world.upload(), max_downloads=2)
    world.download(view)
    assert world.sweep() == PurgeReport()
    assert world.opened(view).share.remaining_downloads == 1
