"""One contract for the repositories, run against the in-memory fakes and the PostgreSQL ones alike.

The services' unit tests run on ``support.fakes``; they prove something about production only as far as the
fakes behave like the SQL repositories. Every test here is a spec of the repository ports, written once and
run twice, so a fake that drifts from the database (or a query that drifts from the rule) fails here.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from satchel.adapters.db.engine import Database
from satchel.adapters.db.unit_of_work import SqlUnitOfWork
from satchel.domain.files import CLEAN, StoredFile
from satchel.domain.invitations import INVITATION_STATUSES
from satchel.domain.sharing import Share
from satchel.domain.uploads import Upload
from satchel.ports.persistence import UnitOfWorkFactory
from satchel.ports.storage import StagedPoint

from support.fakes import FakeClock, FakeDatabase


@dataclass
class Subject:
    """What a spec works on: units of work, and a way to let time pass between rows written."""

    uow: UnitOfWorkFactory
    tick: Callable[[], Awaitable[None]]


Spec = Callable[[Subject], Awaitable[None]]


@pytest.fixture(params=["fake", "postgres"])
def check(request: pytest.FixtureRequest) -> Callable[[Spec], None]:
    """Runs a spec on one implementation: the fakes, or the SQL repositories on a database of the test's own."""
    if request.param == "fake":
        clock = FakeClock(datetime.now(UTC))
        db = FakeDatabase(clock)

        async def tick_fake() -> None:
            clock.advance(seconds=1)

        return lambda spec: asyncio.run(spec(Subject(db.uow, tick_fake)))

    database_url = request.getfixturevalue("own_database")

    async def on_postgres(spec: Spec) -> None:
        database = Database(database_url, pool_size=2)
        try:
            await spec(Subject(lambda: SqlUnitOfWork(database), lambda: asyncio.sleep(0.002)))
        finally:
            await database.engine.dispose()

    return lambda spec: asyncio.run(on_postgres(spec))


NOW = datetime.now(UTC)


async def add_user(subject: Subject, *, quota: int = 1000) -> int:
    async with subject.uow() as uow:
        user = await uow.users.add(
            email=f"u-{secrets.token_hex(4)}@example.test", password_hash="h", is_admin=False, quota_bytes=quota
        )
        await uow.commit()
    return user.id


async def add_file(subject: Subject, owner_id: int, name: str = "a.txt", size: int = 10) -> StoredFile:
    file = StoredFile(
        id=secrets.token_hex(16), owner_id=owner_id, name=name, size=size, content_type="text/plain",
        sha256="0" * 64, storage_key=f"files/x/{secrets.token_hex(16)}", created_at=datetime.now(UTC),
    )  # fmt: skip
    async with subject.uow() as uow:
        await uow.files.add(file)
        await uow.commit()
    await subject.tick()
    return file


async def add_share(subject: Subject, owner_id: int, file_ids: list[str], **terms: Any) -> Share:
    values: dict[str, Any] = {
        "expires_at": NOW + timedelta(days=1), "max_downloads": None, "password_hash": None, "note": None,
        **terms,
    }  # fmt: skip
    async with subject.uow() as uow:
        share = await uow.shares.add(
            token=secrets.token_urlsafe(24), owner_id=owner_id, file_ids=file_ids, now=datetime.now(UTC), **values
        )
        await uow.commit()
    await subject.tick()
    return share


# --- units of work ----------------------------------------------------------------------------------


def test_a_unit_of_work_keeps_only_what_it_committed(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        user_id = await add_user(subject)
        async with subject.uow() as uow:
            await uow.users.set_disabled(user_id, True)
            await uow.jobs.add("ping", {}, queue="default")
        async with subject.uow() as uow:
            user = await uow.users.get(user_id)
            assert user is not None and not user.disabled, "left without a commit: nothing happened"
            assert await uow.jobs.recent(status=None, limit=10) == [], "not even its job"

    check(spec)


def test_reads_are_copies_that_change_nothing_until_written(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        user_id = await add_user(subject)
        async with subject.uow() as uow:
            user = await uow.users.get(user_id)
            assert user is not None
            user.disabled = True
            await uow.commit()
        async with subject.uow() as uow:
            again = await uow.users.get(user_id)
            assert again is not None and not again.disabled

    check(spec)


# --- users and tokens ---------------------------------------------------------------------------------


def test_bytes_are_reserved_only_within_quota_and_released_never_below_zero(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        user_id = await add_user(subject, quota=100)
        async with subject.uow() as uow:
            assert await uow.users.reserve_bytes(user_id, 60)
            assert not await uow.users.reserve_bytes(user_id, 41), "60 + 41 is over the quota of 100"
            assert await uow.users.reserve_bytes(user_id, 40), "60 + 40 is exactly the quota"
            await uow.users.release_bytes(user_id, 30)
            await uow.commit()
        async with subject.uow() as uow:
            user = await uow.users.get(user_id)
            assert user is not None and user.used_bytes == 70
            await uow.users.release_bytes(user_id, 500)
            await uow.commit()
        async with subject.uow() as uow:
            user = await uow.users.get(user_id)
            assert user is not None and user.used_bytes == 0

    check(spec)


def test_users_are_found_by_id_and_email_listed_in_order_and_held(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        first, second = await add_user(subject), await add_user(subject)
        async with subject.uow() as uow:
            found = await uow.users.get(second)
            assert found is not None
            assert (await uow.users.by_email(found.email)) == found
            assert await uow.users.by_email("nobody@example.test") is None
            assert await uow.users.get(10**9) is None
            listed = [u.id for u in await uow.users.list()]
            assert listed.index(first) < listed.index(second)
            held = await uow.users.lock([second, 10**9, first])
            assert list(held) == [first, second] and held[second] == found, "as they are, in id order, known ones"
            await uow.users.set_password(first, "new-hash")
            await uow.commit()
        async with subject.uow() as uow:
            changed = await uow.users.get(first)
            assert changed is not None and changed.password_hash == "new-hash"

    check(spec)


def test_a_token_finds_its_owner_until_it_is_revoked_and_only_its_owner_revokes_it(
    check: Callable[[Spec], None],
) -> None:
    async def spec(subject: Subject) -> None:
        alice, bob = await add_user(subject), await add_user(subject)
        async with subject.uow() as uow:
            one = await uow.tokens.add(user_id=alice, name="laptop", prefix="sat_a", token_hash="hash-1")
            await subject.tick()
            two = await uow.tokens.add(user_id=alice, name="ci", prefix="sat_b", token_hash="hash-2")
            await uow.tokens.add(user_id=bob, name="bob's", prefix="sat_c", token_hash="hash-3")
            await uow.commit()
        async with subject.uow() as uow:
            owned = await uow.tokens.owner_of("hash-1")
            assert owned is not None and owned[0].id == one.id and owned[1].id == alice
            assert await uow.tokens.owner_of("no-such-hash") is None
            assert [t.id for t in await uow.tokens.list_for(alice)] == [two.id, one.id], "newest first"
            assert not await uow.tokens.revoke(bob, one.id, NOW), "not bob's to revoke"
            assert await uow.tokens.revoke(alice, one.id, NOW)
            assert not await uow.tokens.revoke(alice, one.id, NOW), "already revoked"
            await uow.tokens.touch(two.id, NOW)
            await uow.commit()
        async with subject.uow() as uow:
            assert await uow.tokens.owner_of("hash-1") is None
            [touched] = [t for t in await uow.tokens.list_for(alice) if t.id == two.id]
            assert touched.last_used_at is not None
            assert await uow.tokens.revoke_all(alice, NOW) == 1, "only the one still active"
            await uow.commit()
        async with subject.uow() as uow:
            assert await uow.tokens.owner_of("hash-2") is None
            assert await uow.tokens.owner_of("hash-3") is not None, "another user's token stays"

    check(spec)


def test_users_are_searched_newest_first_by_address_with_wildcards_taken_literally(
    check: Callable[[Spec], None],
) -> None:
    async def spec(subject: Subject) -> None:
        made = []
        for email in ("ann_1@example.test", "annx1@example.test", "BOB%@Example.test"):
            async with subject.uow() as uow:
                user = await uow.users.add(email=email.lower(), password_hash="h", is_admin=False, quota_bytes=10)
                made.append(user.id)
                await uow.commit()
        async with subject.uow() as uow:
            everyone, total = await uow.users.search(search=None, limit=10, offset=0)
            assert total == 3 and [u.id for u in everyone] == made[::-1], "newest first"
            found, total = await uow.users.search(search="N_1", limit=10, offset=0)
            assert total == 1 and [u.email for u in found] == ["ann_1@example.test"], "_ is itself, in any case"
            found, total = await uow.users.search(search="b%@", limit=10, offset=0)
            assert total == 1 and [u.email for u in found] == ["bob%@example.test"], "% is itself"
            page, total = await uow.users.search(search="ann", limit=1, offset=1)
            assert total == 2 and [u.id for u in page] == [made[0]]
            beyond, total = await uow.users.search(search="ann", limit=5, offset=5)
            assert (beyond, total) == ([], 2), "a page past the end still says how many match"

    check(spec)


def test_an_accounts_role_quota_session_epoch_and_last_sign_in_are_set(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        user_id = await add_user(subject, quota=1000)
        async with subject.uow() as uow:
            assert await uow.users.reserve_bytes(user_id, 600)
            await uow.users.set_admin(user_id, True)
            assert not await uow.users.set_quota(user_id, 599), "below what it uses: refused in the statement"
            assert await uow.users.set_quota(user_id, 600)
            await uow.users.end_sessions(user_id)
            await uow.users.end_sessions(user_id)
            await uow.users.signed_in(user_id, NOW)
            await uow.commit()
        async with subject.uow() as uow:
            user = await uow.users.get(user_id)
            assert user is not None
            assert (user.is_admin, user.quota_bytes, user.used_bytes, user.session_epoch) == (True, 600, 600, 2)
            assert user.last_signed_in_at == NOW
            [listed] = [u for u in await uow.users.list() if u.id == user_id]
            assert listed == user

    check(spec)


async def add_invitation(subject: Subject, email: str, token: str, **terms: Any) -> Any:
    values: dict[str, Any] = {"is_admin": False, "invited_by_email": "root@example.test", **terms}
    values.setdefault("expires_at", NOW + timedelta(days=7))
    async with subject.uow() as uow:
        invitation = await uow.invitations.add(email=email, token_hash=f"hash-{token}", now=NOW, **values)
        await uow.commit()
    await subject.tick()
    return invitation


def test_an_invitation_is_found_by_id_token_hash_and_address_while_pending(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        made = await add_invitation(subject, "ann@example.test", "a", is_admin=True)
        async with subject.uow() as uow:
            found = await uow.invitations.get(made.id)
            assert found == made and found is not None
            assert (found.email, found.is_admin, found.invited_by_email) == (
                "ann@example.test",
                True,
                "root@example.test",
            )
            assert (found.created_at, found.expires_at, found.accepted_at, found.revoked_at) == (
                NOW, NOW + timedelta(days=7), None, None,
            )  # fmt: skip
            assert await uow.invitations.by_token("hash-a") == made
            assert await uow.invitations.by_token("hash-b") is None
            assert await uow.invitations.get(10**9) is None
            assert await uow.invitations.pending_for("ann@example.test", NOW) == made
            assert await uow.invitations.pending_for("ann@example.test", NOW + timedelta(days=7)) is None, "expired"
            assert await uow.invitations.pending_for("bob@example.test", NOW) is None

    check(spec)


def test_an_invitation_is_accepted_once_and_only_while_pending(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        await add_invitation(subject, "ann@example.test", "a")
        gone = await add_invitation(subject, "bob@example.test", "b", expires_at=NOW)
        withdrawn = await add_invitation(subject, "cat@example.test", "c")
        async with subject.uow() as uow:
            assert await uow.invitations.revoke(withdrawn.id, NOW)
            await uow.commit()
        async with subject.uow() as uow:
            taken = await uow.invitations.accept("hash-a", NOW)
            assert taken is not None and (taken.email, taken.accepted_at) == ("ann@example.test", NOW)
            assert await uow.invitations.accept("hash-a", NOW) is None, "once"
            assert await uow.invitations.accept("hash-b", NOW) is None, "expired at this instant"
            assert await uow.invitations.accept("hash-c", NOW) is None, "withdrawn"
            assert await uow.invitations.accept("hash-x", NOW) is None
            await uow.commit()
        async with subject.uow() as uow:
            assert not await uow.invitations.revoke(taken.id, NOW), "accepted: not withdrawn"
            assert not await uow.invitations.renew(taken.id, token_hash="hash-a2", expires_at=NOW), "nor renewed"
            assert not await uow.invitations.revoke(withdrawn.id, NOW), "withdrawn once"
            assert not await uow.invitations.renew(withdrawn.id, token_hash="hash-c2", expires_at=NOW)
            renewed_until = NOW + timedelta(days=30)
            assert await uow.invitations.renew(gone.id, token_hash="hash-b2", expires_at=renewed_until), "expired: yes"
            await uow.commit()
        async with subject.uow() as uow:
            assert await uow.invitations.by_token("hash-b") is None, "the old link's hash is gone"
            renewed = await uow.invitations.by_token("hash-b2")
            assert renewed is not None and renewed.id == gone.id and renewed.expires_at == renewed_until
            assert await uow.invitations.accept("hash-b2", NOW) is not None

    check(spec)


def test_the_database_and_the_domain_agree_on_each_invitations_state_and_list_it_newest_first(
    check: Callable[[Spec], None],
) -> None:
    """``Invitation.status`` is the rule; the repository's filter is held to it in every state, edges included."""

    async def spec(subject: Subject) -> None:
        states = {
            "pending": {},
            "expiring this instant": {"expires_at": NOW},
            "expired": {"expires_at": NOW - timedelta(seconds=1)},
            "accepted": {},
            "revoked": {},
            "revoked and expired": {"expires_at": NOW - timedelta(days=1)},
        }
        made = {name: await add_invitation(subject, f"{i}@example.test", str(i), **terms)
                for i, (name, terms) in enumerate(states.items())}  # fmt: skip
        async with subject.uow() as uow:
            await uow.invitations.accept(f"hash-{list(states).index('accepted')}", NOW)
            for name in ("revoked", "revoked and expired"):
                await uow.invitations.revoke(made[name].id, NOW)
            await uow.commit()
        async with subject.uow() as uow:
            every, total = await uow.invitations.list(status=None, now=NOW, limit=10, offset=0)
            assert total == 6 and [i.id for i in every] == [i.id for i in made.values()][::-1], "newest first"
            for status in INVITATION_STATUSES:
                found, count = await uow.invitations.list(status=status, now=NOW, limit=10, offset=0)
                assert count == len(found) and all(i.status(NOW) == status for i in found), status
                assert {i.id for i in found} == {i.id for i in every if i.status(NOW) == status}, status
            assert {i.status(NOW) for i in every} == set(INVITATION_STATUSES)
            page, total = await uow.invitations.list(status=None, now=NOW, limit=2, offset=2)
            assert total == 6 and [i.id for i in page] == [made["accepted"].id, made["expired"].id]
            beyond, total = await uow.invitations.list(status="pending", now=NOW, limit=2, offset=4)
            assert (beyond, total) == ([], 1)

    check(spec)


# --- files --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("created", ["b", "c", "a"]),
        ("-created", ["a", "c", "b"]),
        ("name", ["a", "b", "c"]),
        ("-name", ["c", "b", "a"]),
        ("size", ["c", "b", "a"]),
        ("-size", ["a", "b", "c"]),
    ],
)
def test_files_list_by_every_sort_with_pages_and_a_total(
    check: Callable[[Spec], None], sort: str, expected: list[str]
) -> None:
    async def spec(subject: Subject) -> None:
        owner, other = await add_user(subject), await add_user(subject)
        for name, size in (("b", 20), ("c", 5), ("a", 30)):
            await add_file(subject, owner, name, size)
        await add_file(subject, other, "other", 1)
        async with subject.uow() as uow:
            everything, total = await uow.files.list_for(owner, sort=sort, limit=10, offset=0)
            page, _ = await uow.files.list_for(owner, sort=sort, limit=1, offset=1)
        assert [f.name for f in everything] == expected
        assert total == 3, "the other owner's file is not counted"
        assert [f.name for f in page] == [expected[1]]

    check(spec)


def test_files_are_found_updated_and_deleted_and_keys_listed(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        owner = await add_user(subject)
        one, two = await add_file(subject, owner, "one.txt"), await add_file(subject, owner, "two.txt")
        async with subject.uow() as uow:
            assert await uow.files.get(one.id) == one
            assert [f.id for f in await uow.files.get_many([two.id, "0" * 32, one.id])] in (
                [two.id, one.id], [one.id, two.id],
            ), "missing ids are left out"  # fmt: skip
            await uow.files.rename(one.id, "renamed.txt")
            await uow.files.set_scan_status(one.id, CLEAN)
            await uow.files.set_thumbnail(one.id, f"thumbnails/{one.id}.webp")
            await uow.commit()
        async with subject.uow() as uow:
            changed = await uow.files.get(one.id)
            assert changed is not None
            assert (changed.name, changed.scan_status, changed.thumbnail_key) == (
                "renamed.txt", CLEAN, f"thumbnails/{one.id}.webp",
            )  # fmt: skip
            keys = await uow.files.all_keys()
            assert keys[one.storage_key] == (one.id, one.size, one.sha256)
            assert keys[two.storage_key] == (two.id, two.size, two.sha256)
            assert f"thumbnails/{one.id}.webp" in await uow.files.thumbnail_keys()
            await uow.files.delete(one.id)
            await uow.commit()
        async with subject.uow() as uow:
            assert await uow.files.get(one.id) is None
            assert one.storage_key not in await uow.files.all_keys()

    check(spec)


def test_a_files_preview_type_is_decided_once_and_kept(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        owner = await add_user(subject)
        old = await add_file(subject, owner, "old.png")
        assert old.preview_type is None, "not looked at yet"
        new = StoredFile(**{**old.__dict__, "id": secrets.token_hex(16), "storage_key": "files/x/new"})
        new.preview_type = "text/plain"
        async with subject.uow() as uow:
            await uow.files.add(new)
            await uow.files.set_preview_type(old.id, "image/png")
            await uow.files.set_preview_type(new.id, "none")  # decided already: left as it is
            await uow.commit()
        async with subject.uow() as uow:
            assert [(f.id, f.preview_type) for f in await uow.files.get_many([old.id, new.id])] == [
                (old.id, "image/png"), (new.id, "text/plain"),
            ]  # fmt: skip

    check(spec)


def test_a_share_keeps_whether_its_owner_allowed_previews(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        owner = await add_user(subject)
        file = await add_file(subject, owner)
        allowed = await add_share(subject, owner, [file.id], max_downloads=3, allow_previews=True)
        plain = await add_share(subject, owner, [file.id], max_downloads=3)
        assert allowed.allow_previews and not plain.allow_previews
        async with subject.uow() as uow:
            found = [await uow.shares.get(allowed.id), await uow.shares.by_token(plain.token)]
            assert [(s.allow_previews, s.previews_allowed) for s in found if s] == [(True, True), (False, False)]

    check(spec)


# --- shares: the rule of an open link, as each implementation applies it -------------------------------


def test_a_download_is_counted_only_while_the_share_is_open(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        owner = await add_user(subject)
        file = await add_file(subject, owner)
        limited = await add_share(subject, owner, [file.id], max_downloads=2)
        expired = await add_share(subject, owner, [file.id], expires_at=NOW - timedelta(seconds=1))
        revoked = await add_share(subject, owner, [file.id])
        async with subject.uow() as uow:
            await uow.shares.revoke(revoked.id, NOW)
            assert await uow.shares.take_download(limited.id, NOW) == 1
            assert await uow.shares.take_download(limited.id, NOW) == 2
            assert await uow.shares.take_download(limited.id, NOW) is None, "used up"
            assert await uow.shares.take_download(expired.id, NOW) is None
            assert await uow.shares.take_download(revoked.id, NOW) is None
            assert await uow.shares.take_download(10**9, NOW) is None
            await uow.commit()
        async with subject.uow() as uow:
            counted = await uow.shares.get(limited.id)
            assert counted is not None and counted.download_count == 2

    check(spec)


def test_ended_shares_are_the_expired_revoked_and_used_up_ones_in_id_order(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        owner = await add_user(subject)
        file = await add_file(subject, owner)
        open_ = await add_share(subject, owner, [file.id], max_downloads=5)
        expired = await add_share(subject, owner, [file.id], expires_at=NOW - timedelta(seconds=1))
        used_up = await add_share(subject, owner, [file.id], max_downloads=1)
        revoked = await add_share(subject, owner, [file.id])
        async with subject.uow() as uow:
            await uow.shares.take_download(used_up.id, NOW)
            await uow.shares.revoke(revoked.id, NOW)
            await uow.commit()
        async with subject.uow() as uow:
            ended = [s.id for s in await uow.shares.ended(NOW, limit=10)]
            assert ended == [expired.id, used_up.id, revoked.id]
            assert [s.id for s in await uow.shares.ended(NOW, limit=1, after_id=expired.id)] == [used_up.id]
            assert await uow.shares.open_shares_of(file.id, NOW) == 1
            later = NOW + timedelta(days=2)  # everything has expired by then
            assert open_.id in [s.id for s in await uow.shares.ended(later, limit=10)]
            assert await uow.shares.open_shares_of(file.id, later) == 0

    check(spec)


def test_the_sweep_deals_with_an_ended_share_once_and_finds_its_history_by_when_it_did(
    check: Callable[[Spec], None],
) -> None:
    async def spec(subject: Subject) -> None:
        owner = await add_user(subject)
        file = await add_file(subject, owner)
        expired = await add_share(subject, owner, [file.id], expires_at=NOW - timedelta(seconds=1))
        revoked = await add_share(subject, owner, [file.id])
        open_ = await add_share(subject, owner, [file.id])
        earlier = NOW - timedelta(days=2)
        async with subject.uow() as uow:
            await uow.shares.revoke(revoked.id, NOW)
            assert [s.id for s in await uow.shares.ended(NOW, limit=10)] == [expired.id, revoked.id]
            await uow.shares.mark_swept(expired.id, earlier)
            await uow.shares.mark_swept(revoked.id, NOW)
            await uow.shares.mark_swept(expired.id, NOW)  # the first time it was dealt with is the one kept
            await uow.commit()
        async with subject.uow() as uow:
            assert await uow.shares.ended(NOW, limit=10) == [], "each ended share is dealt with once"
            assert await uow.shares.swept_before(NOW - timedelta(days=1), limit=10) == [expired.id]
            assert await uow.shares.swept_before(NOW, limit=10) == [expired.id, revoked.id], "at the moment: in"
            assert await uow.shares.swept_before(NOW, limit=1, after_id=expired.id) == [revoked.id]
            assert await uow.shares.swept_before(earlier - timedelta(microseconds=1), limit=10) == []
            kept = await uow.shares.by_token(expired.token)
            assert kept is not None and kept.swept_at == earlier and kept.file_ids == [file.id], "the record stays"
            assert kept.status(NOW) == "expired"
            listed, total = await uow.shares.list_for(owner, limit=10, offset=0)
            assert total == 3 and {s.id: s.swept_at for s in listed} == {
                expired.id: earlier,
                revoked.id: NOW,
                open_.id: None,
            }
            assert await uow.shares.open_shares_of(file.id, NOW) == 1, "history is not an open link"
            await uow.shares.delete(expired.id)
            await uow.commit()
        async with subject.uow() as uow:
            assert await uow.shares.by_token(expired.token) is None
            assert await uow.shares.swept_before(NOW, limit=10) == [revoked.id]

    check(spec)


def test_the_database_and_the_domain_agree_on_which_shares_are_open_in_every_state(
    check: Callable[[Spec], None],
) -> None:
    """The rule lives once, in ``domain.sharing.OPEN_WHILE``; the SQL condition is rendered from it. Every state a
    share can be in, each edge included, is asked of both: ``Share.is_open`` on the share read back, and the
    repository's ``open_shares_of``, ``ended`` and ``take_download`` (in that order: the last one counts)."""

    async def spec(subject: Subject) -> None:
        owner = await add_user(subject)
        states: dict[str, dict[str, Any]] = {
            "active": {"max_downloads": 5},
            "no limit": {"max_downloads": None},
            "one download left": {"max_downloads": 1},
            "expired": {"expires_at": NOW - timedelta(seconds=1)},
            "expiring this instant": {"expires_at": NOW},
            "revoked": {},
            "used up": {"max_downloads": 1},
            "revoked and expired": {"expires_at": NOW - timedelta(days=1)},
        }
        made = {}
        for state, terms in states.items():
            file = await add_file(subject, owner)
            made[state] = (file.id, await add_share(subject, owner, [file.id], **terms))
        async with subject.uow() as uow:
            for state in ("revoked", "revoked and expired"):
                await uow.shares.revoke(made[state][1].id, NOW)
            await uow.shares.take_download(made["used up"][1].id, NOW)
            await uow.commit()
        async with subject.uow() as uow:
            ended = {s.id for s in await uow.shares.ended(NOW, limit=100)}
            for state, (file_id, created) in made.items():
                share = await uow.shares.get(created.id)
                assert share is not None
                domain = share.is_open(NOW)
                assert domain == (state in ("active", "no limit", "one download left")), state
                assert await uow.shares.open_shares_of(file_id, NOW) == int(domain), state
                assert (share.id not in ended) == domain, state
                assert (await uow.shares.take_download(share.id, NOW) is not None) == domain, state

    check(spec)


def test_a_shares_title_is_stored_as_given_and_read_back_by_every_finder(check: Callable[[Spec], None]) -> None:
    title = "Q3 \u2014 <\u00e9t\u00e9> & \U0001f3d4\ufe0f " + "x" * 184  # 200 characters, some beyond the BMP

    async def spec(subject: Subject) -> None:
        owner = await add_user(subject)
        file = await add_file(subject, owner)
        titled = await add_share(subject, owner, [file.id], title=title)
        untitled = await add_share(subject, owner, [file.id])
        assert (titled.title, untitled.title) == (title, None)
        async with subject.uow() as uow:
            by_id, by_token = await uow.shares.get(titled.id), await uow.shares.by_token(titled.token)
            assert by_id is not None and by_token is not None
            assert by_id.title == by_token.title == title
            owned, _ = await uow.shares.list_for(owner, limit=10, offset=0)
            assert {s.id: s.title for s in owned} == {titled.id: title, untitled.id: None}
            every, _ = await uow.shares.list_all(status=None, now=NOW, limit=10, offset=0)
            assert {entry.share.id: entry.share.title for entry in every} == {titled.id: title, untitled.id: None}
            assert [s.title for s in await uow.shares.for_file(file.id)] == [None, title]

    check(spec)


def test_shares_are_found_by_token_file_and_owner_and_deleted(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        owner, other = await add_user(subject), await add_user(subject)
        one, two = await add_file(subject, owner), await add_file(subject, owner)
        first = await add_share(subject, owner, [one.id, two.id], note="hello", password_hash="ph")
        second = await add_share(subject, owner, [one.id])
        await add_share(subject, other, [(await add_file(subject, other)).id])
        async with subject.uow() as uow:
            found = await uow.shares.by_token(first.token)
            assert found is not None and found.id == first.id
            assert sorted(found.file_ids) == sorted([one.id, two.id])
            assert (found.note, found.password_hash, found.download_count) == ("hello", "ph", 0)
            assert await uow.shares.by_token("no-such-token") is None
            assert [s.id for s in await uow.shares.for_file(one.id)] == [second.id, first.id], "newest first"
            listed, total = await uow.shares.list_for(owner, limit=1, offset=0)
            assert total == 2 and [s.id for s in listed] == [second.id]
            await uow.files.delete(two.id)
            await uow.shares.delete(second.id)
            await uow.commit()
        async with subject.uow() as uow:
            assert await uow.shares.get(second.id) is None
            remaining = await uow.shares.get(first.id)
            assert remaining is not None and remaining.file_ids == [one.id], "a deleted file leaves its shares"

    check(spec)


# --- jobs ---------------------------------------------------------------------------------------------


def test_jobs_wait_in_the_outbox_newest_first_and_only_failed_ones_are_retried(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        ids = []
        for kind in ("ping", "mail", "thumbnail"):
            async with subject.uow() as uow:
                ids.append(await uow.jobs.add(kind, {"n": kind}, queue="default", max_attempts=3))
                await uow.commit()
            await subject.tick()
        async with subject.uow() as uow:
            recent = await uow.jobs.recent(status=None, limit=2)
            assert [j.kind for j in recent] == ["thumbnail", "mail"]
            job = await uow.jobs.get(ids[0])
            assert job is not None
            assert (job.status, job.attempts, job.max_attempts, job.payload) == ("pending", 0, 3, {"n": "ping"})
            assert await uow.jobs.recent(status="failed", limit=10) == []
            assert not await uow.jobs.retry(ids[0]), "a pending job is not failed"
            assert not await uow.jobs.retry("0" * 32)

    check(spec)


async def add_request(subject: Subject, owner_id: int, **terms: Any) -> Any:
    values: dict[str, Any] = {"expires_at": NOW + timedelta(days=1), "max_files": None, "max_bytes": None} | terms
    async with subject.uow() as uow:
        request = await uow.requests.add(
            token=secrets.token_urlsafe(24), owner_id=owner_id, password_hash=None, note=None, now=NOW, **values
        )
        await uow.commit()
    return request


def test_a_request_takes_a_file_only_while_open_and_within_its_files_and_bytes(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        owner = await add_user(subject, quota=10**6)
        two = await add_request(subject, owner, max_files=2, max_bytes=100)
        expired = await add_request(subject, owner, expires_at=NOW - timedelta(seconds=1))
        revoked = await add_request(subject, owner)
        files = [await add_file(subject, owner, size=40) for _ in range(4)]
        async with subject.uow() as uow:
            await uow.requests.revoke(revoked.id, NOW)
            assert await uow.requests.take(two.id, files[0].id, 40, NOW)
            assert not await uow.requests.take(two.id, files[1].id, 61, NOW), "past its bytes"
            assert await uow.requests.take(two.id, files[1].id, 60, NOW)
            assert not await uow.requests.take(two.id, files[2].id, 0, NOW), "full"
            assert not await uow.requests.take(expired.id, files[3].id, 1, NOW)
            assert not await uow.requests.take(revoked.id, files[3].id, 1, NOW)
            await uow.commit()
        async with subject.uow() as uow:
            counted = await uow.requests.get(two.id)
            assert counted is not None and (counted.received_files, counted.received_bytes) == (2, 100)
            assert counted.status(NOW) == "full"
            assert [f.id for f in await uow.requests.received(two.id)] == [files[0].id, files[1].id]
            assert await uow.requests.received(expired.id) == []

    check(spec)


def test_the_database_and_the_domain_agree_on_which_requests_are_open_in_every_state(
    check: Callable[[Spec], None],
) -> None:
    """``domain.requests.REQUEST_OPEN_WHILE`` is the rule; ``take`` must say yes exactly where the aggregate does."""

    async def spec(subject: Subject) -> None:
        owner = await add_user(subject, quota=10**6)
        states: dict[str, dict[str, Any]] = {
            "open": {"max_files": 5},
            "no limits": {},
            "one file left": {"max_files": 1},
            "one byte left": {"max_bytes": 1},
            "no bytes left": {"max_bytes": 1},
            "expired": {"expires_at": NOW - timedelta(seconds=1)},
            "expiring this instant": {"expires_at": NOW},
            "revoked": {},
        }
        made = {state: await add_request(subject, owner, **terms) for state, terms in states.items()}
        async with subject.uow() as uow:
            await uow.requests.revoke(made["revoked"].id, NOW)
            assert await uow.requests.take(made["no bytes left"].id, (await add_file(subject, owner)).id, 1, NOW)
            await uow.commit()
        for state, request in made.items():
            async with subject.uow() as uow:
                current = await uow.requests.get(request.id)
                assert current is not None
                file = await add_file(subject, owner)
                taken = await uow.requests.take(request.id, file.id, 1, NOW)
                assert taken == (current.ended_by(NOW) is None), state

    check(spec)


def test_requests_are_found_by_token_and_listed_newest_first_for_their_owner(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        owner, other = await add_user(subject), await add_user(subject)
        first = await add_request(subject, owner)
        await subject.tick()
        second = await add_request(subject, owner)
        await add_request(subject, other)
        async with subject.uow() as uow:
            found = await uow.requests.by_token(first.token)
            assert found is not None and found.id == first.id
            assert await uow.requests.by_token("nope") is None
            listed, total = await uow.requests.list_for(owner, limit=1, offset=0)
            assert total == 2 and [r.id for r in listed] == [second.id]


# --- resumable uploads ------------------------------------------------------------------------------


async def add_upload(subject: Subject, owner_id: int, *, request_id: int | None = None, **fields: Any) -> Upload:
    upload_id = secrets.token_hex(16)
    values: dict[str, Any] = {
        "id": upload_id, "owner_id": owner_id, "length": 100, "offset": 0, "name": "a.bin", "content_type": None,
        "storage_key": f"files/x/{upload_id}", "staging": {"parts": []}, "created_at": NOW,
        "expires_at": NOW + timedelta(hours=24), "request_id": request_id,
    } | fields  # fmt: skip
    upload = Upload(**values)
    async with subject.uow() as uow:
        await uow.uploads.add(upload)
        await uow.commit()
    return upload


def test_an_upload_moves_on_only_from_where_it_stands_and_remembers_its_link(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        owner = await add_user(subject)
        link = await add_request(subject, owner)
        upload = await add_upload(subject, owner, request_id=link.id)
        later = NOW + timedelta(hours=30)
        async with subject.uow() as uow:
            assert not await uow.uploads.advance(upload.id, from_offset=5, point=StagedPoint(10, {}), expires_at=later)
            assert await uow.uploads.advance(
                upload.id, from_offset=0, point=StagedPoint(40, {"n": 1}), expires_at=later
            )
            await uow.commit()
        async with subject.uow() as uow:
            stored = await uow.uploads.get(upload.id)
            assert stored is not None and (stored.offset, stored.staging, stored.request_id) == (40, {"n": 1}, link.id)
            assert stored.expires_at == later
            await uow.uploads.mark_finished(upload.id, "f" * 32)
            assert not await uow.uploads.advance(upload.id, from_offset=40, point=StagedPoint(50, {}), expires_at=later)
            await uow.commit()
        async with subject.uow() as uow:
            assert upload.id in await uow.uploads.live_ids()
            await uow.uploads.delete(upload.id)
            await uow.commit()
        async with subject.uow() as uow:
            assert await uow.uploads.get(upload.id) is None and upload.id not in await uow.uploads.live_ids()

    check(spec)


def test_the_database_and_the_domain_agree_on_which_uploads_are_abandoned_in_every_state(
    check: Callable[[Spec], None],
) -> None:
    """``Upload.abandoned`` is the rule: idle past its expiry, or unfinished and its link can no longer take it."""

    async def spec(subject: Subject) -> None:
        owner = await add_user(subject, quota=10**6)
        links = {
            "open": await add_request(subject, owner, max_files=5, max_bytes=10_000),
            "revoked": await add_request(subject, owner),
            "expired": await add_request(subject, owner, expires_at=NOW - timedelta(seconds=1)),
            "full": await add_request(subject, owner, max_files=1),
            "too little room": await add_request(subject, owner, max_bytes=150),
        }
        async with subject.uow() as uow:
            await uow.requests.revoke(links["revoked"].id, NOW)
            assert await uow.requests.take(links["full"].id, (await add_file(subject, owner)).id, 10, NOW)
            assert await uow.requests.take(links["too little room"].id, (await add_file(subject, owner)).id, 60, NOW)
            await uow.commit()
        past = NOW - timedelta(seconds=1)
        uploads = [
            await add_upload(subject, owner),
            await add_upload(subject, owner, expires_at=past),
            await add_upload(subject, owner, expires_at=NOW),
            await add_upload(subject, owner, expires_at=past, offset=100, file_id="f" * 32),
            await add_upload(subject, owner, request_id=links["full"].id, offset=100, file_id="e" * 32),
            *[await add_upload(subject, owner, request_id=link.id) for link in links.values()],
            await add_upload(subject, owner, request_id=links["open"].id, expires_at=past),
        ]
        async with subject.uow() as uow:
            current = {link.id: await uow.requests.get(link.id) for link in links.values()}
            listed = await uow.uploads.abandoned(NOW, limit=100)
            first = await uow.uploads.abandoned(NOW, limit=2)
        expected = sorted(u.id for u in uploads if u.abandoned(NOW, current.get(u.request_id or 0)))
        assert [u.id for u in listed] == expected and len(expected) == 8
        assert [u.id for u in first] == expected[:2]
        async with subject.uow() as uow:
            after = await uow.uploads.abandoned(NOW, limit=100, after_id=expected[1])
        assert [u.id for u in after] == expected[2:]

    check(spec)


# --- the audit trail and the admin console's listings ---------------------------------------------------


def test_audit_events_are_kept_only_with_their_commit_and_listed_newest_first_by_filter(
    check: Callable[[Spec], None],
) -> None:
    from satchel.domain.audit import AuditEvent, AuditFilter

    async def spec(subject: Subject) -> None:
        user_id = await add_user(subject)
        base = datetime.now(UTC).replace(microsecond=0)
        async with subject.uow() as uow:
            await uow.audit.record(AuditEvent.of("file.uploaded", base, email="gone@example.com"))  # rolled back
        async with subject.uow() as uow:
            happened = [(0, "file.uploaded", "f1"), (1, "share.created", "7"), (2, "file.deleted", "f1")]
            for minutes, action, subject_id in happened:
                event = AuditEvent.of(
                    action, base + timedelta(minutes=minutes), email="a@example.com", subject=subject_id,
                    client="192.0.2.1", name="a.txt", size=3,
                )  # fmt: skip
                event.actor_id = user_id
                await uow.audit.record(event)
            await uow.commit()
        async with subject.uow() as uow:
            every, total = await uow.audit.list(AuditFilter(), limit=10, offset=0)
            assert total == 3 and [e.action for e in every] == ["file.deleted", "share.created", "file.uploaded"]
            assert every[0].details == {"name": "a.txt", "size": 3} and every[0].actor_id == user_id
            newest = every[0]
            assert (newest.client, newest.actor_email) == ("192.0.2.1", "a@example.com")
            assert newest.at == base + timedelta(minutes=2)
            by_subject, total = await uow.audit.list(AuditFilter(subject="f1"), limit=1, offset=1)
            assert total == 2 and [e.action for e in by_subject] == ["file.uploaded"]
            ranged, _ = await uow.audit.list(
                AuditFilter(since=base + timedelta(minutes=1), until=base + timedelta(minutes=2)), limit=10, offset=0
            )
            assert [e.action for e in ranged] == ["share.created"]
            none, total = await uow.audit.list(AuditFilter(actor_email="gone@example.com"), limit=10, offset=0)
            assert (none, total) == ([], 0)
            beyond, total = await uow.audit.list(AuditFilter(action="file.deleted"), limit=10, offset=5)
            assert (beyond, total) == ([], 1)
        async with subject.uow() as uow:
            assert await uow.audit.prune(base + timedelta(minutes=1)) == 1
            await uow.commit()
        async with subject.uow() as uow:
            assert (await uow.audit.list(AuditFilter(), limit=10, offset=0))[1] == 2

    check(spec)


def test_every_users_files_list_with_their_owner_by_sort_and_search(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        alice, bob = await add_user(subject), await add_user(subject)
        await add_file(subject, alice, "Big_Report.pdf", size=900)
        await add_file(subject, bob, "notes.txt", size=10)
        await add_file(subject, alice, "50%.txt", size=50)
        async with subject.uow() as uow:
            users = {alice: (await uow.users.get(alice)), bob: (await uow.users.get(bob))}
            by_size, total = await uow.files.list_all(sort="-size", search=None, limit=10, offset=0)
            assert total == 3 and [o.file.name for o in by_size] == ["Big_Report.pdf", "50%.txt", "notes.txt"]
            assert by_size[0].owner_email == users[alice].email  # type: ignore[union-attr]
            found, total = await uow.files.list_all(sort="name", search="big_rep", limit=10, offset=0)
            assert total == 1 and found[0].file.name == "Big_Report.pdf"
            found, _ = await uow.files.list_all(sort="name", search="%", limit=10, offset=0)
            assert [o.file.name for o in found] == ["50%.txt"], "a % is a character searched for, not a wildcard"
            email = users[bob].email  # type: ignore[union-attr]
            found, total = await uow.files.list_all(sort="-created", search=email.upper(), limit=10, offset=0)
            assert total == 1 and found[0].file.name == "notes.txt"
            page, total = await uow.files.list_all(sort="-created", search=None, limit=1, offset=1)
            assert total == 3 and [o.file.name for o in page] == ["notes.txt"]
            beyond, total = await uow.files.list_all(sort="-created", search=None, limit=1, offset=9)
            assert (beyond, total) == ([], 3)

    check(spec)


def test_every_users_shares_list_with_owner_file_names_and_each_status(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        owner = await add_user(subject)
        first, second = await add_file(subject, owner, "one.txt"), await add_file(subject, owner, "two.txt")
        now = datetime.now(UTC)
        made = {
            "active": await add_share(subject, owner, [second.id, first.id]),
            "expired": await add_share(subject, owner, [first.id], expires_at=now - timedelta(hours=1)),
            "used up": await add_share(subject, owner, [first.id], max_downloads=1),
            "revoked": await add_share(subject, owner, [first.id], expires_at=now - timedelta(hours=1)),
        }
        async with subject.uow() as uow:
            assert await uow.shares.take_download(made["used up"].id, now) == 1
            await uow.shares.revoke(made["revoked"].id, now)  # expired too: revoked is told first
            await uow.commit()
        async with subject.uow() as uow:
            every, total = await uow.shares.list_all(status=None, now=now, limit=10, offset=0)
            assert total == 4 and every[-1].share.id == made["active"].id
            assert every[-1].file_names == ["two.txt", "one.txt"] and every[-1].share.file_ids == [second.id, first.id]
            for status, share in made.items():
                (found,), total = await uow.shares.list_all(status=status, now=now, limit=10, offset=0)
                assert found.share.id == share.id and found.share.status(now) == status
            beyond, total = await uow.shares.list_all(status=None, now=now, limit=2, offset=8)
            assert (beyond, total) == ([], 4)

    check(spec)


# --- password resets and linked identities ----------------------------------------------------------


def test_a_password_reset_is_recorded_once_per_token_and_used_once_while_pending(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        user_id = await add_user(subject)
        async with subject.uow() as uow:
            made = await uow.password_resets.add(
                user_id=user_id, token_hash="reset-a", expires_at=NOW + timedelta(hours=1), now=NOW
            )
            again = await uow.password_resets.add(
                user_id=user_id, token_hash="reset-a", expires_at=NOW + timedelta(hours=9), now=NOW
            )
            assert again == made and (made.user_id, made.created_at, made.used_at) == (user_id, NOW, None)
            await uow.password_resets.add(user_id=user_id, token_hash="reset-b", expires_at=NOW, now=NOW)
            await uow.password_resets.add(
                user_id=user_id, token_hash="reset-c", expires_at=NOW + timedelta(hours=1), now=NOW
            )
            await uow.commit()
        async with subject.uow() as uow:
            assert await uow.password_resets.by_token("reset-a") == made
            assert await uow.password_resets.by_token("reset-x") is None
            assert await uow.password_resets.use("reset-b", NOW) is None, "expired at this instant"
            used = await uow.password_resets.use("reset-a", NOW)
            assert used is not None and used.id == made.id and used.used_at == NOW
            assert await uow.password_resets.use("reset-a", NOW) is None, "once"
            assert await uow.password_resets.end_all(user_id, NOW) == 2, "the expired one and the other pending one"
            assert await uow.password_resets.use("reset-c", NOW) is None, "ended with the others"
            await uow.commit()

    check(spec)


def test_two_uses_of_one_reset_at_once_let_one_through(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        user_id = await add_user(subject)
        async with subject.uow() as uow:
            await uow.password_resets.add(user_id=user_id, token_hash="r", expires_at=NOW + timedelta(hours=1), now=NOW)
            await uow.commit()

        async def use() -> bool:
            async with subject.uow() as uow:
                taken = await uow.password_resets.use("r", NOW)
                await uow.commit()
            return taken is not None

        assert sorted(await asyncio.gather(use(), use())) == [False, True]

    check(spec)


def test_an_identity_names_its_account_for_good_and_is_linked_once(check: Callable[[Spec], None]) -> None:
    from satchel.domain.identities import AlreadyLinked

    async def spec(subject: Subject) -> None:
        user_id = await add_user(subject)
        async with subject.uow() as uow:
            linked = await uow.identities.add(
                issuer="https://id.example", subject="s-1", user_id=user_id, email="a@example.test", now=NOW
            )
            assert (linked.user_id, linked.email, linked.created_at, linked.last_used_at) == (
                user_id, "a@example.test", NOW, None,
            )  # fmt: skip
            await uow.commit()
        async with subject.uow() as uow:
            user = await uow.identities.user_of("https://id.example", "s-1")
            assert user is not None and user.id == user_id
            assert await uow.identities.user_of("https://other.example", "s-1") is None, "subjects are per issuer"
            assert await uow.identities.user_of("https://id.example", "s-2") is None
            await uow.identities.used("https://id.example", "s-1", NOW)
            with pytest.raises(AlreadyLinked):
                await uow.identities.add(
                    issuer="https://id.example", subject="s-1", user_id=user_id, email="b@example.test", now=NOW
                )

    check(spec)


def test_an_invitation_is_accepted_by_address_only_while_pending(check: Callable[[Spec], None]) -> None:
    async def spec(subject: Subject) -> None:
        await add_invitation(subject, "old@example.test", "o", expires_at=NOW)
        made = await add_invitation(subject, "dan@example.test", "d")
        async with subject.uow() as uow:
            assert await uow.invitations.accept_for("old@example.test", NOW) is None, "expired"
            taken = await uow.invitations.accept_for("dan@example.test", NOW)
            assert taken is not None and taken.id == made.id and taken.accepted_at == NOW
            assert await uow.invitations.accept_for("dan@example.test", NOW) is None, "once"
            assert await uow.invitations.accept("hash-d", NOW) is None, "its link is used up too"

    check(spec)
