"""Sharing: the Share aggregate, ShareTerms, and the Sharing service against in-memory fakes."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from satchel.domain.accounts import AccountDisabled, User
from satchel.domain.errors import Gone, InvalidInput, NotFound, TooManyAttempts
from satchel.domain.files import StoredFile
from satchel.domain.notifications import share_invitation
from satchel.domain.sharing import (
    MAX_NOTE,
    MAX_TITLE,
    Share,
    ShareExpired,
    SharePasswordRequired,
    ShareRevoked,
    ShareTerms,
    ShareUsedUp,
    clean_title,
    is_share_token,
    new_share_token,
    share_lifetime,
)
from satchel.ports.persistence import UnitOfWork
from satchel.services.sharing import PASSWORD_ATTEMPTS, ShareView, Sharing

from support.fakes import FakeClock, FakeDatabase, FakePasswordHasher, FakeRateLimiter

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def a_share(**changes: object) -> Share:
    share = Share(
        id=1, token="tok", owner_id=1, file_ids=["f1"], created_at=NOW, expires_at=NOW + WEEK, max_downloads=None,
        download_count=0, password_hash=None, note=None,
    )  # fmt: skip
    return replace(share, **changes)  # type: ignore[arg-type]


# --- The Share aggregate --------------------------------------------------------------------------


def test_an_open_share_authorizes_a_download() -> None:
    a_share().authorize_download(NOW, unlocked=False)


def test_a_revoked_share_refuses_downloads() -> None:
    with pytest.raises(ShareRevoked):
        a_share(revoked_at=NOW).authorize_download(NOW, unlocked=True)


def test_a_share_refuses_downloads_from_the_moment_it_expires() -> None:
    share = a_share()
    share.authorize_download(share.expires_at - timedelta(microseconds=1), unlocked=False)
    with pytest.raises(ShareExpired):
        share.authorize_download(share.expires_at, unlocked=False)


def test_a_share_at_its_download_limit_refuses_downloads() -> None:
    with pytest.raises(ShareUsedUp):
        a_share(max_downloads=3, download_count=3).authorize_download(NOW, unlocked=False)


def test_a_password_protected_share_refuses_downloads_until_unlocked() -> None:
    share = a_share(password_hash="hashed:secret")
    with pytest.raises(SharePasswordRequired):
        share.authorize_download(NOW, unlocked=False)
    share.authorize_download(NOW, unlocked=True)


def test_a_closed_share_gives_its_reason_before_asking_for_the_password() -> None:
    with pytest.raises(ShareExpired):
        a_share(password_hash="hashed:secret").authorize_download(NOW + WEEK, unlocked=False)


@pytest.mark.parametrize(
    ("changes", "now", "status"),
    [
        ({}, NOW, "active"),
        ({"revoked_at": NOW}, NOW, "revoked"),
        ({"revoked_at": NOW}, NOW + 2 * WEEK, "revoked"),  # revocation outranks expiry
        ({}, NOW + WEEK, "expired"),
        ({"max_downloads": 1, "download_count": 1}, NOW, "used up"),
        ({"max_downloads": 2, "download_count": 1}, NOW, "active"),
    ],
)
def test_status_names_the_state_of_the_share(changes: dict[str, object], now: datetime, status: str) -> None:
    assert a_share(**changes).status(now) == status


def test_remaining_downloads_is_none_without_a_limit() -> None:
    assert a_share().remaining_downloads is None


def test_remaining_downloads_counts_down_and_never_goes_negative() -> None:
    assert a_share(max_downloads=5, download_count=2).remaining_downloads == 3
    assert a_share(max_downloads=5, download_count=7).remaining_downloads == 0


# --- ShareTerms -----------------------------------------------------------------------------------


@pytest.mark.parametrize("expires_in", [timedelta(0), timedelta(seconds=-1)])
def test_terms_refuse_an_expiry_that_is_not_in_the_future(expires_in: timedelta) -> None:
    with pytest.raises(InvalidInput, match="future"):
        ShareTerms(expires_in).validated(max_days=30)


def test_terms_refuse_an_expiry_beyond_the_servers_maximum() -> None:
    ShareTerms(timedelta(days=30)).validated(max_days=30)
    with pytest.raises(InvalidInput, match="30 days"):
        ShareTerms(timedelta(days=30, seconds=1)).validated(max_days=30)


@pytest.mark.parametrize("max_downloads", [0, -1, 1_000_001])
def test_terms_refuse_a_download_limit_out_of_range(max_downloads: int) -> None:
    with pytest.raises(InvalidInput, match="download limit"):
        ShareTerms(WEEK, max_downloads=max_downloads).validated(max_days=30)


@pytest.mark.parametrize("max_downloads", [None, 1, 1_000_000])
def test_terms_accept_a_download_limit_in_range_or_none(max_downloads: int | None) -> None:
    assert ShareTerms(WEEK, max_downloads=max_downloads).validated(max_days=30).max_downloads == max_downloads


def test_terms_refuse_an_over_long_note() -> None:
    ShareTerms(WEEK, note="x" * MAX_NOTE).validated(max_days=30)
    with pytest.raises(InvalidInput, match="note"):
        ShareTerms(WEEK, note="x" * (MAX_NOTE + 1)).validated(max_days=30)


@pytest.mark.parametrize(("note", "kept"), [("", None), ("   \n ", None), (None, None), ("  for Bob \n", "for Bob")])
def test_terms_strip_the_note_and_drop_an_empty_one(note: str | None, kept: str | None) -> None:
    assert ShareTerms(WEEK, note=note).validated(max_days=30).note == kept


def test_terms_drop_control_characters_and_lone_surrogates_from_the_note_but_keep_its_lines() -> None:
    note = "for\x00 Bob\ud800\x1b\r\n\tthanks"
    assert ShareTerms(WEEK, note=note).validated(max_days=30).note == "for Bob\r\n\tthanks"


@pytest.mark.parametrize(
    ("title", "kept"),
    [(None, None), ("", None), ("   ", None), ("  Trip photos  ", "Trip photos"), ("Q3 — été 旅行", "Q3 — été 旅行"),
     ("family \U0001f468\u200d\U0001f469\u200d\U0001f467", "family \U0001f468\u200d\U0001f469\u200d\U0001f467"),
     ("<b>bold</b> & co", "<b>bold</b> & co"), ("x" * MAX_TITLE, "x" * MAX_TITLE)],
)  # fmt: skip
def test_a_title_is_one_trimmed_line_and_a_blank_one_is_none(title: str | None, kept: str | None) -> None:
    """Markup is text here (pages escape it), and joiners stay: they hold an emoji sequence together."""
    assert clean_title(title) == kept
    assert ShareTerms(WEEK, title=title).validated(max_days=30).title == kept


def test_a_title_longer_than_the_limit_is_refused_not_cut() -> None:
    with pytest.raises(InvalidInput, match=f"{MAX_TITLE} characters"):
        clean_title("x" * (MAX_TITLE + 1))
    assert clean_title(" " * 5 + "x" * MAX_TITLE + " " * 5) == "x" * MAX_TITLE, "the limit is on what is kept"


@pytest.mark.parametrize(
    "breaker",
    ["\n", "\r", "\t", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\u202e", "\u2066", "\ud800"],
)
def test_a_title_with_a_control_character_anywhere_is_refused(breaker: str) -> None:
    for title in (f"Trip{breaker}photos", f"Trip photos{breaker}", f"{breaker}Trip"):
        with pytest.raises(InvalidInput, match="one line of text"):
            ShareTerms(WEEK, title=title).validated(max_days=30)


def test_an_invitation_to_a_titled_share_names_the_title_in_its_subject_and_text() -> None:
    titled = share_invitation(
        "bob@example.test", "ann@example.test", "https://x.test/s/t", ["a.pdf"], None, "Q3 <deck>"
    )
    assert titled.subject == "ann@example.test shared “Q3 <deck>” with you"
    assert titled.text.startswith("ann@example.test shared “Q3 <deck>” with you: a.pdf.")
    assert "Q3 &lt;deck&gt;" in titled.html and "<deck>" not in titled.html
    untitled = share_invitation("bob@example.test", "ann@example.test", "https://x.test/s/t", ["a.pdf"], None)
    assert untitled.subject == "ann@example.test shared files with you"


@pytest.mark.parametrize(
    ("hours", "lifetime"), [(None, timedelta(days=7)), (1, timedelta(hours=1)), (720, timedelta(days=30))]
)
def test_a_lifetime_is_the_hours_asked_or_the_servers_default(hours: float | None, lifetime: timedelta) -> None:
    assert share_lifetime(hours, default_days=7, max_days=30) == lifetime


@pytest.mark.parametrize("hours", [0, -1, float("nan"), -float("inf")])
def test_a_lifetime_must_be_a_positive_number_of_hours(hours: float) -> None:
    with pytest.raises(InvalidInput, match="positive"):
        share_lifetime(hours, default_days=7, max_days=30)


@pytest.mark.parametrize("hours", [720.001, 1e300, float("inf"), 10**400])
def test_a_lifetime_beyond_the_maximum_is_refused_without_overflowing(hours: float) -> None:
    with pytest.raises(InvalidInput, match="at most 30 days"):
        share_lifetime(hours, default_days=7, max_days=30)


def test_share_tokens_have_one_format_that_anything_else_fails() -> None:
    assert is_share_token(new_share_token())
    for malformed in ("", "a\x00b", "A" * 31, "A" * 33, "A" * 31 + "=", "A" * 31 + "\u00e9"):
        assert not is_share_token(malformed)


# --- The Sharing service --------------------------------------------------------------------------


class World:
    """Two users with a file each, and the Sharing service over fakes."""

    def __init__(self) -> None:
        self.clock = FakeClock(NOW)
        self.db = FakeDatabase(self.clock)
        self.limiter = FakeRateLimiter()
        self.sharing = Sharing(
            self.db.uow, FakePasswordHasher(), self.limiter, max_days=30, default_days=7, clock=self.clock
        )
        self.alice = self.add_user("alice@example.com")
        self.bob = self.add_user("bob@example.com")
        self.report = self.add_file(self.alice, "report.pdf")
        self.photo = self.add_file(self.alice, "photo.jpg")
        self.bobs_file = self.add_file(self.bob, "diary.txt")

    def add_user(self, email: str) -> User:
        return self.db.add_user(email)

    def add_file(self, owner: User, name: str) -> StoredFile:
        file = StoredFile(
            id=f"{len(self.db.files):032x}", owner_id=owner.id, name=name, size=10, content_type="text/plain",
            sha256="0" * 64, storage_key=f"files/{name}", created_at=self.clock(),
        )  # fmt: skip

        async def add() -> None:
            async with self.db.uow() as uow:
                await uow.files.add(file)
                await uow.commit()

        asyncio.run(add())
        return file

    def share(
        self,
        *file_ids: str,
        expires_in: timedelta = WEEK,
        max_downloads: int | None = None,
        note: str | None = None,
        password: str | None = None,
        title: str | None = None,
    ) -> ShareView:
        terms = ShareTerms(expires_in, max_downloads, note, title=title)
        return asyncio.run(self.sharing.create(self.alice, list(file_ids), terms, password=password))

    def open(self, token: str) -> ShareView:
        return asyncio.run(self.sharing.open(token))

    def download(self, view: ShareView, *, unlocked: bool = False) -> None:
        asyncio.run(self.sharing.take_download(view, view.files, unlocked=unlocked))


@pytest.fixture
def world() -> World:
    return World()


def test_create_records_the_files_and_the_terms(world: World) -> None:
    view = world.share(world.report.id, max_downloads=3, note=" hi ")

    stored = world.db.shares[view.share.id]
    assert stored.file_ids == [world.report.id]
    assert stored.owner_id == world.alice.id
    assert stored.expires_at == NOW + WEEK
    assert (stored.max_downloads, stored.note, stored.password_hash) == (3, "hi", None)
    assert [f.id for f in view.files] == [world.report.id]


def test_create_keeps_the_title_and_the_share_reads_it_back(world: World) -> None:
    view = world.share(world.report.id, world.photo.id, title="  Q3 report  ")
    assert view.share.title == world.db.shares[view.share.id].title == "Q3 report"
    assert world.open(view.share.token).share.title == "Q3 report"
    with pytest.raises(InvalidInput):
        world.share(world.report.id, title="Q3\nreport")
    assert len(world.db.shares) == 1, "a refused title makes no link"


def test_create_refuses_another_owners_file_as_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.share(world.report.id, world.bobs_file.id)
    assert world.db.shares == {}


def test_create_refuses_a_missing_file_as_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.share("f" * 32)


def test_create_refuses_a_malformed_file_id_as_not_found_without_a_query(world: World) -> None:
    with pytest.raises(NotFound):
        asyncio.run(_without_a_database().create(world.alice, [world.report.id, "a\x00b"], ShareTerms(WEEK)))


def test_create_refuses_a_password_the_hasher_could_not_take(world: World) -> None:
    with pytest.raises(InvalidInput):
        world.share(world.report.id, password="\ud800")
    with pytest.raises(InvalidInput, match="too long"):
        world.share(world.report.id, password="x" * 1025)
    assert world.db.shares == {}


def test_terms_give_the_servers_default_and_refuse_what_it_does_not_allow(world: World) -> None:
    assert world.sharing.terms().expires_in == timedelta(days=7)
    assert world.sharing.terms(2, max_downloads=3, note=" hi ").note == "hi"
    for hours in (1e300, float("inf"), 24 * 31):
        with pytest.raises(InvalidInput, match="at most 30 days"):
            world.sharing.terms(hours)
    with pytest.raises(InvalidInput, match="download limit"):
        world.sharing.terms(max_downloads=10**30)


def test_create_collapses_duplicate_files_keeping_their_order(world: World) -> None:
    view = world.share(world.photo.id, world.report.id, world.photo.id)
    assert view.share.file_ids == [world.photo.id, world.report.id]
    assert [f.id for f in view.files] == [world.photo.id, world.report.id]


def test_create_refuses_a_share_of_no_files(world: World) -> None:
    with pytest.raises(InvalidInput):
        world.share()


def test_create_checks_the_terms_against_the_servers_limits(world: World) -> None:
    with pytest.raises(InvalidInput, match="30 days"):
        world.share(world.report.id, expires_in=timedelta(days=31))


def test_a_disabled_owner_cannot_create_shares(world: World) -> None:
    world.alice.disabled = True
    with pytest.raises(AccountDisabled):
        world.share(world.report.id)


def test_share_tokens_are_distinct_url_safe_and_carry_at_least_128_bits(world: World) -> None:
    tokens = [world.share(world.report.id).share.token for _ in range(50)]
    assert len(set(tokens)) == len(tokens)
    for token in tokens:
        assert len(token) >= 22  # 22 base64url characters hold 132 bits
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token)


def test_open_shows_the_share_and_its_files(world: World) -> None:
    created = world.share(world.report.id, world.photo.id)
    view = world.open(created.share.token)
    assert view.share.id == created.share.id
    assert [f.name for f in view.files] == ["report.pdf", "photo.jpg"]
    assert view.file(world.photo.id).name == "photo.jpg"
    with pytest.raises(NotFound):
        view.file(world.bobs_file.id)


def test_open_of_an_unknown_token_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.open(new_share_token())


def _without_a_database() -> Sharing:
    """The service with a database it must never reach: input that cannot name anything needs no query."""

    def no_queries() -> UnitOfWork:
        raise AssertionError("a query was made")

    return Sharing(no_queries, FakePasswordHasher(), FakeRateLimiter(), max_days=30, default_days=7)


@pytest.mark.parametrize("token", ["no-such-token", "a\x00b", "x" * 5000])
def test_open_of_a_link_that_cannot_be_a_token_is_not_found_without_a_query(token: str) -> None:
    with pytest.raises(NotFound, match="no such link"):
        asyncio.run(_without_a_database().open(token))


def test_open_of_an_expired_share_raises_share_expired(world: World) -> None:
    token = world.share(world.report.id, expires_in=timedelta(hours=1)).share.token
    world.clock.advance(minutes=59)
    world.open(token)
    world.clock.advance(minutes=1)
    with pytest.raises(ShareExpired):
        world.open(token)


def test_a_download_counts_against_the_limit(world: World) -> None:
    view = world.open(world.share(world.report.id, max_downloads=2).share.token)
    world.download(view)
    assert world.db.shares[view.share.id].download_count == 1
    assert world.open(view.share.token).share.remaining_downloads == 1


def test_second_download_of_single_use_share_is_refused(world: World) -> None:
    token = world.share(world.report.id, max_downloads=1).share.token
    view = world.open(token)
    world.download(view)

    with pytest.raises(ShareUsedUp):
        world.download(view)  # the view still shows 0 downloads: the repository's count decides
    with pytest.raises(ShareUsedUp):
        world.open(token)
    assert world.db.shares[view.share.id].download_count == 1


def test_a_share_without_a_limit_allows_any_number_of_downloads(world: World) -> None:
    view = world.open(world.share(world.report.id).share.token)
    for _ in range(10):
        world.download(view)
    assert world.db.shares[view.share.id].download_count == 10


def test_a_revoked_share_refuses_to_open(world: World) -> None:
    created = world.share(world.report.id)
    asyncio.run(world.sharing.revoke(world.alice, created.share.id))

    assert world.db.shares[created.share.id].revoked_at == NOW
    with pytest.raises(ShareRevoked):
        world.open(created.share.token)


def test_a_download_begun_before_the_share_was_revoked_is_refused(world: World) -> None:
    view = world.open(world.share(world.report.id).share.token)
    asyncio.run(world.sharing.revoke(world.alice, view.share.id))

    with pytest.raises(Gone):
        world.download(view)
    assert world.db.shares[view.share.id].download_count == 0


def test_a_download_after_expiry_is_refused_even_with_an_earlier_view(world: World) -> None:
    view = world.open(world.share(world.report.id, expires_in=timedelta(hours=1)).share.token)
    world.clock.advance(hours=1)
    with pytest.raises(ShareExpired):
        world.download(view)
    assert world.db.shares[view.share.id].download_count == 0


def test_only_the_owner_can_revoke_a_share(world: World) -> None:
    created = world.share(world.report.id)
    with pytest.raises(NotFound):
        asyncio.run(world.sharing.revoke(world.bob, created.share.id))
    assert world.db.shares[created.share.id].revoked_at is None


def test_a_share_password_is_stored_only_as_its_hash(world: World) -> None:
    view = world.share(world.report.id, password="open sesame")
    assert world.db.shares[view.share.id].password_hash == "hashed:open sesame"
    assert view.share.has_password


def test_an_empty_password_makes_a_share_without_one(world: World) -> None:
    assert not world.share(world.report.id, password="").share.has_password


def test_a_password_protected_share_needs_unlocking_before_a_download(world: World) -> None:
    view = world.open(world.share(world.report.id, password="open sesame").share.token)
    with pytest.raises(SharePasswordRequired):
        world.download(view, unlocked=False)
    world.download(view, unlocked=True)
    assert world.db.shares[view.share.id].download_count == 1


def test_unlock_accepts_the_right_password_and_refuses_a_wrong_one(world: World) -> None:
    view = world.open(world.share(world.report.id, password="open sesame").share.token)
    assert asyncio.run(world.sharing.unlock(view, "open sesame", client="1.2.3.4")) is True
    assert asyncio.run(world.sharing.unlock(view, "open sesame!", client="1.2.3.4")) is False


def test_unlock_with_a_password_the_hasher_could_not_take_is_simply_wrong(world: World) -> None:
    view = world.open(world.share(world.report.id, password="open sesame").share.token)
    assert asyncio.run(world.sharing.unlock(view, "\ud800", client="1.2.3.4")) is False


def test_unlock_is_rate_limited_per_share_and_client(world: World) -> None:
    view = world.open(world.share(world.report.id, password="open sesame").share.token)
    limit, _ = PASSWORD_ATTEMPTS
    for _ in range(limit):
        assert asyncio.run(world.sharing.unlock(view, "guess", client="1.2.3.4")) is False

    with pytest.raises(TooManyAttempts) as caught:
        asyncio.run(world.sharing.unlock(view, "open sesame", client="1.2.3.4"))  # even the right one
    assert caught.value.retry_after == world.limiter.retry_after
    assert asyncio.run(world.sharing.unlock(view, "open sesame", client="5.6.7.8")) is True


def test_list_owned_shows_only_the_owners_shares_newest_first(world: World) -> None:
    first = world.share(world.report.id)
    world.clock.advance(minutes=1)
    second = world.share(world.photo.id)

    views, total = asyncio.run(world.sharing.list_owned(world.alice))
    assert total == 2
    assert [v.share.id for v in views] == [second.share.id, first.share.id]
    assert [f.id for f in views[0].files] == [world.photo.id]
    assert asyncio.run(world.sharing.list_owned(world.bob)) == ([], 0)


# --- Previews: a look is not a download -------------------------------------------------------------


def test_a_link_without_a_limit_always_shows_previews() -> None:
    a_share().authorize_preview(NOW, unlocked=False)
    assert a_share(allow_previews=False).previews_allowed


def test_a_limited_link_shows_previews_only_when_its_owner_allowed_them() -> None:
    from satchel.domain.previews import PreviewsOff

    with pytest.raises(PreviewsOff):
        a_share(max_downloads=3).authorize_preview(NOW, unlocked=False)
    a_share(max_downloads=3, allow_previews=True).authorize_preview(NOW, unlocked=False)


def test_a_preview_obeys_every_term_a_download_does() -> None:
    allowed = {"max_downloads": 1, "allow_previews": True}
    with pytest.raises(ShareUsedUp):
        a_share(**allowed, download_count=1).authorize_preview(NOW, unlocked=False)
    with pytest.raises(ShareExpired):
        a_share(**allowed).authorize_preview(NOW + WEEK, unlocked=False)
    with pytest.raises(ShareRevoked):
        a_share(revoked_at=NOW).authorize_preview(NOW, unlocked=False)
    with pytest.raises(SharePasswordRequired):
        a_share(password_hash="h").authorize_preview(NOW, unlocked=False)
    a_share(password_hash="h").authorize_preview(NOW, unlocked=True)
