"""Sharing in SQL: share links and the files they hold, and the rule of an open share as a condition."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by

from satchel.adapters.db.engine import Connection
from satchel.adapters.db.files import SqlFiles
from satchel.adapters.db.queries import Query
from satchel.adapters.db.schema import files, share_files, shares, users
from satchel.domain.files import StoredFile
from satchel.domain.sharing import OPEN_WHILE, Share
from satchel.ports.persistence import OwnedShare

# Each term of ``domain.sharing.OPEN_WHILE``, by the status a share has once the term fails, as SQL.
_HOLDS: dict[str, Callable[[datetime], sa.ColumnElement[bool]]] = {
    "revoked": lambda now: shares.c.revoked_at.is_(None),
    "expired": lambda now: shares.c.expires_at > now,
    "used up": lambda now: sa.or_(shares.c.max_downloads.is_(None), shares.c.download_count < shares.c.max_downloads),
}
if {term.status for term in OPEN_WHILE} != set(_HOLDS):
    raise ImportError("a term of domain.sharing.OPEN_WHILE has no SQL here")


def share_is_open(now: datetime) -> sa.ColumnElement[bool]:
    """The domain's rule of an open share (``OPEN_WHILE``), as a condition on ``shares`` rows."""
    return sa.and_(*(_HOLDS[term.status](now) for term in OPEN_WHILE))


def share_has_status(status: str, now: datetime) -> sa.ColumnElement[bool]:
    """Shares whose ``Share.status`` at ``now`` is ``status``: open, or the first term of ``OPEN_WHILE`` they fail."""
    if status == "active":
        return share_is_open(now)
    statuses = [term.status for term in OPEN_WHILE]
    at = statuses.index(status)  # a ValueError for a status no share has
    return sa.and_(*(_HOLDS[s](now) for s in statuses[:at]), sa.not_(_HOLDS[status](now)))


def _columns(row: Any) -> dict[str, Any]:
    """A row's columns, without the window-function total that paged queries add."""
    return {k: v for k, v in row._mapping.items() if k != "total"}


_FILE_IDS = (
    sa.select(sa.func.array_agg(aggregate_order_by(share_files.c.file_id, share_files.c.position)))
    .where(share_files.c.share_id == shares.c.id)
    .scalar_subquery()
    .label("file_ids")
)


def _share_of(columns: dict[str, Any], file_ids: list[str] | None) -> Share:
    return Share(**columns, file_ids=list(file_ids or []))


def _share(row: Any) -> Share:
    m = _columns(row)
    m["file_ids"] = list(m["file_ids"] or [])
    return Share(**m)


_FILE_NAMES = (
    sa.select(sa.func.array_agg(aggregate_order_by(files.c.name, share_files.c.position)))
    .select_from(share_files.join(files, files.c.id == share_files.c.file_id))
    .where(share_files.c.share_id == shares.c.id)
    .scalar_subquery()
    .label("file_names")
)

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
        self,
        *,
        token: str,
        owner_id: int,
        file_ids: list[str],
        expires_at: datetime,
        max_downloads: int | None,
        password_hash: str | None,
        note: str | None,
        now: datetime,
        delete_files_when_done: bool = False,
        allow_previews: bool = False,
        title: str | None = None,
    ) -> Share:
        values = {
            "token": token,
            "owner_id": owner_id,
            "expires_at": expires_at,
            "max_downloads": max_downloads,
            "password_hash": password_hash,
            "note": note,
            "created_at": now,
            "delete_files_when_done": delete_files_when_done,
            "allow_previews": allow_previews,
            "title": title,
        }
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

    async def list_all(
        self, *, status: str | None, now: datetime, limit: int, offset: int
    ) -> tuple[list[OwnedShare], int]:
        query = sa.select(
            shares, _FILE_IDS, _FILE_NAMES, users.c.email.label("owner_email"), sa.func.count().over().label("total")
        ).select_from(shares.join(users, users.c.id == shares.c.owner_id))
        if status is not None:
            query = query.where(share_has_status(status, now))
        query = query.order_by(shares.c.created_at.desc(), shares.c.id.desc()).limit(limit).offset(offset)
        rows = (await self.conn.execute(query)).all()
        found = [
            OwnedShare(
                _share_of({c.name: r._mapping[c.name] for c in shares.c}, r.file_ids),
                r.owner_email,
                list(r.file_names or []),
            )
            for r in rows
        ]
        if rows or not offset:
            return found, int(rows[0].total) if rows else 0
        count = sa.select(sa.func.count()).select_from(query.order_by(None).limit(None).offset(None).subquery())
        return found, int(await self.conn.scalar(count) or 0)

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
                share_is_open(now),
            )
            .values(download_count=shares.c.download_count + 1)
            .returning(shares.c.download_count)
        )
        return None if count is None else int(count)

    async def ended(self, now: datetime, *, limit: int, after_id: int = 0) -> list[Share]:
        query = (
            sa.select(shares, _FILE_IDS)
            .where(shares.c.id > after_id, shares.c.swept_at.is_(None), sa.not_(share_is_open(now)))
            .order_by(shares.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=shares)
        )
        return [_share(r) for r in await self.conn.execute(query)]

    async def mark_swept(self, share_id: int, now: datetime) -> None:
        await self.conn.execute(
            sa.update(shares).where(shares.c.id == share_id, shares.c.swept_at.is_(None)).values(swept_at=now)
        )

    async def swept_before(self, moment: datetime, *, limit: int, after_id: int = 0) -> list[int]:
        query = (
            sa.select(shares.c.id)
            .where(shares.c.id > after_id, shares.c.swept_at <= moment)
            .order_by(shares.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [int(row.id) for row in await self.conn.execute(query)]

    async def delete(self, share_id: int) -> None:
        await self.conn.execute(sa.delete(shares).where(shares.c.id == share_id))

    async def open_shares_of(self, file_id: str, now: datetime) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(shares.join(share_files, share_files.c.share_id == shares.c.id))
            .where(
                share_files.c.file_id == file_id,
                share_is_open(now),
            )
        )
        return int(await self.conn.scalar(query) or 0)
