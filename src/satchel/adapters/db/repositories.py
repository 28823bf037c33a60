"""The repositories and unit of work of ``satchel.ports``, in SQL on PostgreSQL.

The reads every request makes (a share by its token, a token's owner, a user, a page of files) are
``Query`` objects compiled once (see ``queries``); the rest are built as they are needed.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.exc import IntegrityError

from satchel.adapters.db.engine import Connection, Database, GuardedConnection
from satchel.adapters.db.queries import Query, Row
from satchel.adapters.db.schema import api_tokens, files, jobs, share_files, shares, users
from satchel.adapters.db.uploads import SqlUploads
from satchel.domain.accounts import ApiToken, EmailTaken, User
from satchel.domain.files import StoredFile
from satchel.domain.sharing import Share
from satchel.ports import Job

JOBS_CHANNEL = "satchel_jobs"

_FILE_ORDER = {
    "created": files.c.created_at.asc(),
    "-created": files.c.created_at.desc(),
    "name": files.c.name.asc(),
    "-name": files.c.name.desc(),
    "size": files.c.size.asc(),
    "-size": files.c.size.desc(),
}
SORTS = tuple(_FILE_ORDER)


def _user(row: Any) -> User:
    return User(**row._mapping)


_USER = Query(sa.select(users).where(users.c.id == sa.bindparam("user_id")))
_TOKEN_COLUMNS = [c.label(f"token_{c.name}") for c in api_tokens.c if c.name != "token_hash"]
_TOKEN_OWNER = Query(
    sa.select(users, *_TOKEN_COLUMNS)
    .join(api_tokens, users.c.id == api_tokens.c.user_id)
    .where(api_tokens.c.token_hash == sa.bindparam("token_hash"), api_tokens.c.revoked_at.is_(None))
)


def _token(row: Any) -> ApiToken:
    m = row._mapping
    return ApiToken(
        id=m["id"], user_id=m["user_id"], name=m["name"], prefix=m["prefix"], created_at=m["created_at"],
        last_used_at=m["last_used_at"], revoked_at=m["revoked_at"],
    )  # fmt: skip


def _columns(row: Any) -> dict[str, Any]:
    """A row's columns, without the window-function total that paged queries add."""
    return {k: v for k, v in row._mapping.items() if k != "total"}


class SqlUsers:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add(self, *, email: str, password_hash: str, is_admin: bool, quota_bytes: int) -> User:
        insert = (
            sa.insert(users)
            .values(email=email, password_hash=password_hash, is_admin=is_admin, quota_bytes=quota_bytes)
            .returning(*users.c)
        )
        try:
            async with self.conn.begin_nested():
                row = (await self.conn.execute(insert)).one()
        except IntegrityError:  # a concurrent sign-up with the same email won the race
            raise EmailTaken() from None
        return _user(row)

    async def get(self, user_id: int) -> User | None:
        rows = await self.conn.rows(_USER, user_id=user_id)
        return User(**rows[0]) if rows else None

    async def by_email(self, email: str) -> User | None:
        row = (await self.conn.execute(sa.select(users).where(users.c.email == email))).one_or_none()
        return _user(row) if row else None

    async def list(self) -> list[User]:
        return [_user(r) for r in await self.conn.execute(sa.select(users).order_by(users.c.id))]

    async def set_password(self, user_id: int, password_hash: str) -> None:
        await self.conn.execute(sa.update(users).where(users.c.id == user_id).values(password_hash=password_hash))

    async def set_disabled(self, user_id: int, disabled: bool) -> None:
        await self.conn.execute(sa.update(users).where(users.c.id == user_id).values(disabled=disabled))

    async def reserve_bytes(self, user_id: int, size: int) -> bool:
        result = await self.conn.execute(
            sa.update(users)
            .where(users.c.id == user_id, users.c.used_bytes + size <= users.c.quota_bytes)
            .values(used_bytes=users.c.used_bytes + size)
        )
        return result.rowcount == 1

    async def release_bytes(self, user_id: int, size: int) -> None:
        await self.conn.execute(
            sa.update(users)
            .where(users.c.id == user_id)
            .values(used_bytes=sa.func.greatest(users.c.used_bytes - size, 0))
        )


class SqlTokens:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add(self, *, user_id: int, name: str, prefix: str, token_hash: str) -> ApiToken:
        row = (
            await self.conn.execute(
                sa.insert(api_tokens)
                .values(user_id=user_id, name=name, prefix=prefix, token_hash=token_hash)
                .returning(*api_tokens.c)
            )
        ).one()
        return _token(row)

    async def owner_of(self, token_hash: str) -> tuple[ApiToken, User] | None:
        rows = await self.conn.rows(_TOKEN_OWNER, token_hash=token_hash)
        if not rows:
            return None
        row = rows[0]
        token = {c.name: row[f"token_{c.name}"] for c in api_tokens.c if c.name != "token_hash"}
        return ApiToken(**token), User(**{c.name: row[c.name] for c in users.c})

    async def list_for(self, user_id: int) -> list[ApiToken]:
        query = sa.select(api_tokens).where(api_tokens.c.user_id == user_id).order_by(api_tokens.c.id.desc())
        return [_token(r) for r in await self.conn.execute(query)]

    async def revoke(self, user_id: int, token_id: int, now: datetime) -> bool:
        result = await self.conn.execute(
            sa.update(api_tokens)
            .where(api_tokens.c.id == token_id, api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return result.rowcount == 1

    async def revoke_all(self, user_id: int, now: datetime) -> int:
        result = await self.conn.execute(
            sa.update(api_tokens)
            .where(api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return result.rowcount

    async def touch(self, token_id: int, now: datetime) -> None:
        await self.conn.execute(sa.update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now))


def _file_of(row: Row) -> StoredFile:
    return StoredFile(**{c.name: row[c.name] for c in files.c})


_FILES = Query(sa.select(files).where(files.c.id == sa.any_(sa.bindparam("ids", type_=ARRAY(sa.String)))))
_PAGES = {
    sort: Query(
        sa.select(files, sa.func.count().over().label("total"))
        .where(files.c.owner_id == sa.bindparam("owner_id"))
        .order_by(order, files.c.id)
        .limit(sa.bindparam("limit", type_=sa.BigInteger))
        .offset(sa.bindparam("offset", type_=sa.BigInteger))
    )
    for sort, order in _FILE_ORDER.items()
}


class SqlFiles:
    """Files. ``known`` holds the files this unit of work has read already (with a share, by its token):
    asking for them again costs no round trip. Writing a file forgets it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.known: dict[str, StoredFile] = {}

    async def add(self, file: StoredFile) -> None:
        await self.conn.execute(sa.insert(files).values(**file.__dict__))

    async def get(self, file_id: str) -> StoredFile | None:
        found = await self.get_many([file_id])
        return found[0] if found else None

    async def get_many(self, file_ids: list[str]) -> list[StoredFile]:
        found = self.known
        if not all(i in found for i in file_ids):
            found = {row["id"]: _file_of(row) for row in await self.conn.rows(_FILES, ids=list(file_ids))}
        return [found[i] for i in file_ids if i in found]

    async def list_for(self, owner_id: int, *, sort: str, limit: int, offset: int) -> tuple[list[StoredFile], int]:
        rows = await self.conn.rows(_PAGES[sort], owner_id=owner_id, limit=limit, offset=offset)
        total = rows[0]["total"] if rows else await self._count(owner_id)
        return [_file_of(r) for r in rows], total

    async def _count(self, owner_id: int) -> int:
        count = await self.conn.scalar(sa.select(sa.func.count()).where(files.c.owner_id == owner_id))
        return int(count or 0)

    async def rename(self, file_id: str, name: str) -> None:
        self.known.pop(file_id, None)
        await self.conn.execute(sa.update(files).where(files.c.id == file_id).values(name=name))

    async def delete(self, file_id: str) -> None:
        self.known.pop(file_id, None)
        await self.conn.execute(sa.delete(files).where(files.c.id == file_id))

    async def set_scan_status(self, file_id: str, status: str) -> None:
        self.known.pop(file_id, None)
        await self.conn.execute(sa.update(files).where(files.c.id == file_id).values(scan_status=status))

    async def set_thumbnail(self, file_id: str, key: str) -> None:
        self.known.pop(file_id, None)
        await self.conn.execute(sa.update(files).where(files.c.id == file_id).values(thumbnail_key=key))

    async def thumbnail_keys(self) -> set[str]:
        rows = await self.conn.execute(sa.select(files.c.thumbnail_key).where(files.c.thumbnail_key.is_not(None)))
        return {r.thumbnail_key for r in rows}

    async def all_keys(self) -> dict[str, tuple[str, int, str]]:
        rows = await self.conn.execute(sa.select(files.c.storage_key, files.c.id, files.c.size, files.c.sha256))
        return {r.storage_key: (r.id, r.size, r.sha256) for r in rows}


_FILE_IDS = (
    sa.select(sa.func.array_agg(aggregate_order_by(share_files.c.file_id, share_files.c.position)))
    .where(share_files.c.share_id == shares.c.id)
    .scalar_subquery()
    .label("file_ids")
)


def _share(row: Any) -> Share:
    m = _columns(row)
    m["file_ids"] = list(m["file_ids"] or [])
    return Share(**m)


_SHARE = Query(sa.select(shares, _FILE_IDS).where(shares.c.id == sa.bindparam("share_id")))
# A share and its files in one round trip: one row per file, in the share's order (one row, file columns
# empty, when it has none left).
_SHARE_WITH_FILES = Query(
    sa.select(shares, *[c.label(f"file_{c.name}") for c in files.c])
    .select_from(
        shares.outerjoin(share_files, share_files.c.share_id == shares.c.id).outerjoin(
            files, files.c.id == share_files.c.file_id
        )
    )
    .where(shares.c.token == sa.bindparam("token"))
    .order_by(share_files.c.position)
)


class SqlShares:
    def __init__(self, conn: Connection, unit_files: SqlFiles | None = None) -> None:
        self.conn = conn
        self.files = unit_files or SqlFiles(conn)  # where the files read with a share are kept

    async def add(
        self, *, token: str, owner_id: int, file_ids: list[str], expires_at: datetime, max_downloads: int | None,
        password_hash: str | None, note: str | None, now: datetime, delete_files_when_done: bool = False,
    ) -> Share:  # fmt: skip
        values = {
            "token": token, "owner_id": owner_id, "expires_at": expires_at, "max_downloads": max_downloads,
            "password_hash": password_hash, "note": note, "created_at": now,
            "delete_files_when_done": delete_files_when_done,
        }  # fmt: skip
        share_id = await self.conn.scalar(sa.insert(shares).values(**values).returning(shares.c.id))
        links = [{"share_id": share_id, "file_id": f, "position": i} for i, f in enumerate(file_ids)]
        await self.conn.execute(sa.insert(share_files), links)
        share = await self.get(int(share_id))
        assert share is not None
        return share

    async def get(self, share_id: int) -> Share | None:
        rows = await self.conn.rows(_SHARE, share_id=share_id)
        return Share(**{**rows[0], "file_ids": list(rows[0]["file_ids"] or [])}) if rows else None

    async def by_token(self, token: str) -> Share | None:
        """The share, its files read with it: asking this unit of work's files for them costs nothing more."""
        rows = await self.conn.rows(_SHARE_WITH_FILES, token=token)
        if not rows:
            return None
        linked = [r for r in rows if r["file_id"] is not None]
        for row in linked:
            self.files.known[row["file_id"]] = StoredFile(**{c.name: row[f"file_{c.name}"] for c in files.c})
        columns = {c.name: rows[0][c.name] for c in shares.c}
        return Share(**columns, file_ids=[r["file_id"] for r in linked])

    async def list_for(self, owner_id: int, *, limit: int, offset: int) -> tuple[list[Share], int]:
        query = (
            sa.select(shares, _FILE_IDS, sa.func.count().over().label("total"))
            .where(shares.c.owner_id == owner_id)
            .order_by(shares.c.created_at.desc(), shares.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        rows = (await self.conn.execute(query)).all()
        total = rows[0].total if rows else 0
        return [_share(r) for r in rows], total

    async def for_file(self, file_id: str) -> list[Share]:
        query = (
            sa.select(shares, _FILE_IDS)
            .where(shares.c.id.in_(sa.select(share_files.c.share_id).where(share_files.c.file_id == file_id)))
            .order_by(shares.c.created_at.desc())
        )
        return [_share(r) for r in await self.conn.execute(query)]

    async def revoke(self, share_id: int, now: datetime) -> None:
        await self.conn.execute(
            sa.update(shares).where(shares.c.id == share_id, shares.c.revoked_at.is_(None)).values(revoked_at=now)
        )

    async def take_download(self, share_id: int, now: datetime) -> int | None:
        # One conditional UPDATE: concurrent downloads on any number of processes cannot overshoot the limit.
        count = await self.conn.scalar(
            sa.update(shares)
            .where(
                shares.c.id == share_id,
                shares.c.revoked_at.is_(None),
                shares.c.expires_at > now,
                sa.or_(shares.c.max_downloads.is_(None), shares.c.download_count < shares.c.max_downloads),
            )
            .values(download_count=shares.c.download_count + 1)
            .returning(shares.c.download_count)
        )
        return None if count is None else int(count)

    async def ended(self, now: datetime, *, limit: int, after_id: int = 0) -> list[Share]:
        query = (
            sa.select(shares, _FILE_IDS)
            .where(
                shares.c.id > after_id,
                sa.or_(
                    shares.c.revoked_at.is_not(None),
                    shares.c.expires_at <= now,
                    shares.c.download_count >= shares.c.max_downloads,
                ),
            )
            .order_by(shares.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=shares)
        )
        return [_share(r) for r in await self.conn.execute(query)]

    async def delete(self, share_id: int) -> None:
        await self.conn.execute(sa.delete(shares).where(shares.c.id == share_id))

    async def open_shares_of(self, file_id: str, now: datetime) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(shares.join(share_files, share_files.c.share_id == shares.c.id))
            .where(
                share_files.c.file_id == file_id,
                shares.c.revoked_at.is_(None),
                shares.c.expires_at > now,
                sa.or_(shares.c.max_downloads.is_(None), shares.c.download_count < shares.c.max_downloads),
            )
        )
        return int(await self.conn.scalar(query) or 0)


class SqlJobs:
    """The outbox. Adding a job also notifies the relay, which hears it only once the transaction commits."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add(self, kind: str, payload: dict[str, Any], *, queue: str, max_attempts: int = 5) -> str:
        job_id = secrets.token_hex(16)
        await self.conn.execute(
            sa.insert(jobs).values(id=job_id, kind=kind, queue=queue, payload=payload, max_attempts=max_attempts)
        )
        await self.conn.execute(sa.select(sa.func.pg_notify(JOBS_CHANNEL, job_id)))
        return job_id

    async def get(self, job_id: str) -> Job | None:
        row = (await self.conn.execute(sa.select(jobs).where(jobs.c.id == job_id))).one_or_none()
        return Job(**row._mapping) if row else None

    async def recent(self, *, status: str | None, limit: int) -> list[Job]:
        query = sa.select(jobs).order_by(jobs.c.created_at.desc()).limit(limit)
        if status:
            query = query.where(jobs.c.status == status)
        return [Job(**r._mapping) for r in await self.conn.execute(query)]

    async def retry(self, job_id: str) -> bool:
        result = await self.conn.execute(
            sa.update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status == "failed")
            .values(status="pending", attempts=0, available_at=sa.func.now(), last_error=None, finished_at=None)
        )
        if result.rowcount == 1:
            await self.conn.execute(sa.select(sa.func.pg_notify(JOBS_CHANNEL, job_id)))
        return result.rowcount == 1


class SqlUnitOfWork:
    """One transaction on one pooled connection; rolled back unless committed.

    Every round trip, from the check-out to the rollback, runs under the database's guard.
    """

    users: SqlUsers
    tokens: SqlTokens
    files: SqlFiles
    shares: SqlShares
    jobs: SqlJobs
    uploads: SqlUploads

    def __init__(self, database: Database) -> None:
        self._database = database
        self._conn: GuardedConnection | None = None

    async def __aenter__(self) -> SqlUnitOfWork:
        self._conn = await self._database.connect()
        self.users = SqlUsers(self._conn)
        self.tokens = SqlTokens(self._conn)
        self.files = SqlFiles(self._conn)
        self.shares = SqlShares(self._conn, self.files)
        self.jobs = SqlJobs(self._conn)
        self.uploads = SqlUploads(self._conn)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._conn is not None
        conn, self._conn = self._conn, None
        await conn.release()

    async def commit(self) -> None:
        assert self._conn is not None
        await self._conn.commit()
