"""Connections to PostgreSQL, for the web (async) and for workers and admin commands."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from satchel.adapters.resilience import Guard


def sqlalchemy_url(database_url: str) -> str:
    """``DATABASE_URL`` as SQLAlchemy wants it: always the psycopg 3 driver."""
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(scheme="postgresql+psycopg"))


class Database:
    """The async engine of one process, with a guarded health probe."""

    name = "database"

    def __init__(self, database_url: str, *, pool_size: int = 10, timeout: float = 5.0) -> None:
        connect_args = {"connect_timeout": max(1, int(timeout))}
        if pool_size:
            self.engine: AsyncEngine = create_async_engine(
                sqlalchemy_url(database_url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                pool_timeout=timeout, connect_args=connect_args,
            )  # fmt: skip
        else:  # no pool: connections live exactly as long as one unit of work
            self.engine = create_async_engine(
                sqlalchemy_url(database_url), poolclass=NullPool, connect_args=connect_args
            )
        self._guard = Guard("database", timeout=timeout, outage_errors=(OSError, OperationalError, DBAPIError))

    async def ping(self) -> None:
        async def select_one() -> None:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))

        await self._guard.call(select_one)

    async def close(self) -> None:
        await self.engine.dispose()


def sync_engine(database_url: str) -> sa.Engine:
    """A blocking engine for migrations, workers and one-off commands."""
    return sa.create_engine(sqlalchemy_url(database_url), pool_pre_ping=True)
