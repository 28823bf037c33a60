"""Resumable uploads in SQL: the row that lets any process continue an upload, and the lock on it."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from satchel.adapters.db.engine import Connection, lock_key, sever, sqlalchemy_url
from satchel.adapters.db.requests import request_can_take
from satchel.adapters.db.schema import upload_requests, uploads
from satchel.adapters.resilience import Guard
from satchel.domain.uploads import Upload, UploadBusy
from satchel.ports.storage import StagedPoint


def _upload(row: Any) -> Upload:
    return Upload(**row._mapping)


class SqlUploads:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add(self, upload: Upload) -> None:
        await self.conn.execute(sa.insert(uploads).values(**upload.__dict__))

    async def get(self, upload_id: str) -> Upload | None:
        row = (await self.conn.execute(sa.select(uploads).where(uploads.c.id == upload_id))).one_or_none()
        return _upload(row) if row else None

    async def advance(self, upload_id: str, *, from_offset: int, point: StagedPoint, expires_at: datetime) -> bool:
        result = await self.conn.execute(
            sa.update(uploads)
            .where(uploads.c.id == upload_id, uploads.c.offset == from_offset, uploads.c.file_id.is_(None))
            .values(offset=point.offset, staging=point.staging, expires_at=expires_at)
        )
        return result.rowcount == 1

    async def mark_finished(self, upload_id: str, file_id: str) -> None:
        await self.conn.execute(sa.update(uploads).where(uploads.c.id == upload_id).values(file_id=file_id))

    async def delete(self, upload_id: str) -> None:
        await self.conn.execute(sa.delete(uploads).where(uploads.c.id == upload_id))

    async def abandoned(self, now: datetime, *, limit: int, after_id: str = "") -> list[Upload]:
        # ``Upload.abandoned`` as SQL: idle past its expiry, or unfinished and its link can no longer take it.
        link_refuses = sa.and_(
            uploads.c.file_id.is_(None),
            uploads.c.request_id.is_not(None),
            sa.not_(request_can_take(now, uploads.c.length)),
        )
        query = (
            sa.select(uploads)
            .select_from(uploads.outerjoin(upload_requests, upload_requests.c.id == uploads.c.request_id))
            .where(sa.or_(uploads.c.expires_at <= now, link_refuses), uploads.c.id > after_id)
            .order_by(uploads.c.id)
            .limit(limit)
        )
        return [_upload(r) for r in await self.conn.execute(query)]

    async def live_ids(self) -> set[str]:
        return set((await self.conn.execute(sa.select(uploads.c.id))).scalars())


class AdvisoryUploadLocks:
    """One writer per upload, across every process: a PostgreSQL advisory lock held for the request.

    The lock lives on a connection of its own, outside the pool, for as long as the request
    writes; it ends when the request does, or when PostgreSQL sees the connection of a killed
    process close, so the client's retry is never locked out by a dead writer. Its round trips
    go through the database's guard, and a stuck one has its socket shut (see ``engine``).
    """

    def __init__(self, database_url: str, guard: Guard) -> None:
        self._engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(database_url),
            poolclass=NullPool,
            hide_parameters=True,
            connect_args={
                "connect_timeout": max(2, math.ceil(guard.timeout)),
                "options": f"-c statement_timeout={math.ceil(guard.timeout * 1000)}",
            },
        )
        self._guard = guard

    @asynccontextmanager
    async def hold(self, upload_id: str) -> AsyncIterator[None]:
        key = lock_key(f"upload:{upload_id}")
        conn = await self._guard.call(self._engine.connect)
        try:

            async def take() -> bool:
                taken = bool(await conn.scalar(sa.select(sa.func.pg_try_advisory_lock(key))))
                await conn.commit()
                return taken

            if not await self._guard.call(take, interrupt=lambda: sever(conn)):
                raise UploadBusy()
            yield
        finally:
            # Dropped without a round trip (a stalled server would hang one): the server sees the
            # connection end and releases its advisory locks.
            await conn.invalidate()
            await conn.close()

    async def close(self) -> None:
        await self._engine.dispose()
