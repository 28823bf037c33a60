"""Upload requests in SQL, and the rule of an open request as a condition (``domain.requests``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from satchel.adapters.db.engine import Connection
from satchel.adapters.db.schema import files, request_files, upload_requests
from satchel.domain.files import StoredFile
from satchel.domain.requests import REQUEST_OPEN_WHILE, UploadRequest

r = upload_requests.c
# Each term of ``REQUEST_OPEN_WHILE``, by the status a request has once the term fails, as SQL.
_HOLDS: dict[str, Callable[[datetime], sa.ColumnElement[bool]]] = {
    "revoked": lambda now: r.revoked_at.is_(None),
    "expired": lambda now: r.expires_at > now,
    "full": lambda now: sa.and_(
        sa.or_(r.max_files.is_(None), r.received_files < r.max_files),
        sa.or_(r.max_bytes.is_(None), r.received_bytes < r.max_bytes),
    ),
}
if {term.status for term in REQUEST_OPEN_WHILE} != set(_HOLDS):
    raise ImportError("a term of domain.requests.REQUEST_OPEN_WHILE has no SQL here")


def request_is_open(now: datetime) -> sa.ColumnElement[bool]:
    """The domain's rule of an open request, as a condition on ``upload_requests`` rows."""
    return sa.and_(*(_HOLDS[term.status](now) for term in REQUEST_OPEN_WHILE))


def request_can_take(now: datetime, size: int | sa.ColumnElement[int]) -> sa.ColumnElement[bool]:
    """``UploadRequest.can_take``: open, with room for ``size`` more bytes (a number, or a column of a joined row)."""
    return sa.and_(request_is_open(now), sa.or_(r.max_bytes.is_(None), r.received_bytes + size <= r.max_bytes))


def _request(row: Any) -> UploadRequest:
    return UploadRequest(**{k: v for k, v in row._mapping.items() if k != "total"})


class SqlUploadRequests:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add(
        self,
        *,
        token: str,
        owner_id: int,
        expires_at: datetime,
        max_files: int | None,
        max_bytes: int | None,
        password_hash: str | None,
        note: str | None,
        now: datetime,
    ) -> UploadRequest:
        values = {
            "token": token,
            "owner_id": owner_id,
            "expires_at": expires_at,
            "max_files": max_files,
            "max_bytes": max_bytes,
            "password_hash": password_hash,
            "note": note,
            "created_at": now,
        }
        row = (await self.conn.execute(sa.insert(upload_requests).values(**values).returning(upload_requests))).one()
        return _request(row)

    async def get(self, request_id: int) -> UploadRequest | None:
        row = (await self.conn.execute(sa.select(upload_requests).where(r.id == request_id))).one_or_none()
        return _request(row) if row else None

    async def by_token(self, token: str) -> UploadRequest | None:
        row = (await self.conn.execute(sa.select(upload_requests).where(r.token == token))).one_or_none()
        return _request(row) if row else None

    async def list_for(self, owner_id: int, *, limit: int, offset: int) -> tuple[list[UploadRequest], int]:
        query = (
            sa.select(upload_requests, sa.func.count().over().label("total"))
            .where(r.owner_id == owner_id)
            .order_by(r.created_at.desc(), r.id.desc())
            .limit(limit)
            .offset(offset)
        )
        rows = (await self.conn.execute(query)).all()
        return [_request(row) for row in rows], (rows[0].total if rows else 0)

    async def revoke(self, request_id: int, now: datetime) -> None:
        await self.conn.execute(
            sa.update(upload_requests).where(r.id == request_id, r.revoked_at.is_(None)).values(revoked_at=now)
        )

    async def take(self, request_id: int, file_id: str, size: int, now: datetime) -> bool:
        # One conditional UPDATE: concurrent uploads on any number of processes cannot overshoot either limit.
        taken = await self.conn.scalar(
            sa.update(upload_requests)
            .where(r.id == request_id, request_can_take(now, size))
            .values(received_files=r.received_files + 1, received_bytes=r.received_bytes + size)
            .returning(r.id)
        )
        if taken is None:
            return False
        # The wall clock, not the transaction's: files taken in one transaction keep the order they came in.
        arrived = sa.func.clock_timestamp()
        await self.conn.execute(
            sa.insert(request_files).values(request_id=request_id, file_id=file_id, received_at=arrived)
        )
        return True

    async def received(self, request_id: int) -> list[StoredFile]:
        query = (
            sa.select(files)
            .join(request_files, request_files.c.file_id == files.c.id)
            .where(request_files.c.request_id == request_id)
            .order_by(request_files.c.received_at, files.c.id)
        )
        return [StoredFile(**row._mapping) for row in await self.conn.execute(query)]
