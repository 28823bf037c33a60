"""Connections to PostgreSQL, for the web (async) and for workers and admin commands.

Units of work take their connections from one pool per process (see ``connection`` for how each round
trip is guarded, and why reads need no transaction). The pool never opens a connection beyond its size:
under a burst, requests wait their turn for a pooled connection (first come, first served) instead of
each opening and closing one of their own. It tests no connection before handing it out: a connection
the server dropped fails its first statement at once, and that statement runs again on another one.
Connections older than ``RECYCLE_AFTER`` are replaced when next taken, before an idle timeout on the
way to the server (a proxy, a firewall) can cut them.
"""

from __future__ import annotations

import hashlib
import math
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import psycopg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.expression import Executable

from satchel.adapters.db.connection import UNSTORABLE, GuardedConnection, mark_fresh, sever
from satchel.adapters.db.queries import Query, Row
from satchel.adapters.resilience import Guard

__all__ = ["UNSTORABLE", "Connection", "Database", "GuardedConnection", "is_outage", "lock_key", "sever"]

RECYCLE_AFTER = 1800  # seconds a pooled connection is used before it is replaced
PING = Query(sa.select(sa.literal_column("1")))


def sqlalchemy_url(database_url: str) -> str:
    """``DATABASE_URL`` as SQLAlchemy wants it: always the psycopg 3 driver."""
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(scheme="postgresql+psycopg"))


def lock_key(name: str) -> int:
    """A stable signed 64-bit PostgreSQL advisory-lock key for a name (a job id, an upload's)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def is_outage(exc: Exception) -> bool:
    """Does this error mean the database is failing, rather than that the request was wrong?"""
    if isinstance(exc, DBAPIError):  # the driver's error, wrapped: a lost connection, or an operational one
        return exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))
    return isinstance(exc, (OSError, sa.exc.TimeoutError, psycopg.OperationalError, psycopg.InterfaceError))


class Connection(Protocol):
    """What repositories need of a connection: statements, precompiled reads and savepoints."""

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]: ...
    async def scalar(self, statement: Executable, parameters: Any = None) -> Any: ...
    async def rows(self, query: Query, **parameters: Any) -> list[Row]: ...
    def begin_nested(self) -> AbstractAsyncContextManager[Any]: ...


class Database:
    """The async engine of one process, whose units of work are guarded round trip by round trip.

    ``engine`` runs every connection in transactions, as SQLAlchemy does by default (the worker's own
    statements use it); units of work share its pool in autocommit, and begin a transaction on their
    first write.
    """

    name = "database"

    def __init__(self, database_url: str, *, pool_size: int = 10, timeout: float = 5.0) -> None:
        self.timeout = timeout
        connect_args = {
            "connect_timeout": max(2, math.ceil(timeout)),  # libpq's own minimum is 2 s
            # The server gives up on a statement when we do: nothing keeps running for a severed caller.
            "options": f"-c statement_timeout={math.ceil(timeout * 1000)}",
        }
        options: dict[str, Any] = {"hide_parameters": True, "connect_args": connect_args}
        if pool_size:
            options |= {"pool_size": pool_size, "max_overflow": 0, "pool_timeout": timeout}
            options |= {"pool_recycle": RECYCLE_AFTER}
        else:  # no pool: connections live exactly as long as one unit of work
            options |= {"poolclass": NullPool}
        # Autocommit is the pool's own level, so a unit of work's check-out changes no connection setting.
        self._units: AsyncEngine = create_async_engine(
            sqlalchemy_url(database_url), isolation_level="AUTOCOMMIT", **options
        )
        self.engine: AsyncEngine = self._units.execution_options(isolation_level="READ COMMITTED")
        event.listen(self._units.sync_engine, "connect", mark_fresh)
        self.guard = Guard("database", timeout=timeout, is_outage=is_outage)

    async def connect(self) -> GuardedConnection:
        """A unit of work's connection; it is checked out of the pool by its first statement."""
        return GuardedConnection(self._units, self.guard)

    async def ping(self) -> None:
        conn = await self.connect()
        try:
            await conn.rows(PING)
        finally:
            await conn.release()

    async def close(self) -> None:
        await self._units.dispose()


def sync_engine(database_url: str) -> sa.Engine:
    """A blocking engine for migrations, workers and one-off commands."""
    return sa.create_engine(sqlalchemy_url(database_url), pool_pre_ping=True, hide_parameters=True)
