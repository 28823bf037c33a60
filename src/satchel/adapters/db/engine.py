"""Connections to PostgreSQL, for the web (async) and for workers and admin commands.

Every round trip of a unit of work (check-out, each statement, savepoints, commit,
rollback) runs under the database's ``Guard``. A call that overruns its timeout has
its socket shut down: the driver then fails at once, as if the server had died,
and the connection is discarded. Cancelling instead would make the driver send the
server a cancel request and wait for it, which a stalled server never answers; and
a connection handed back to the pool would be rolled back there, which hangs the
same way. The server ends what it was running by itself (``statement_timeout``).
"""

from __future__ import annotations

import hashlib
import math
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool
from sqlalchemy.sql.expression import Executable

from satchel.adapters.resilience import Guard
from satchel.domain.errors import InvalidInput
from satchel.ports import ServiceUnavailable
from satchel.runtime.logging import get_logger

T = TypeVar("T")

log = get_logger(__name__)
UNSTORABLE = "A value in this request cannot be stored (a NUL character, or a number too large)."
_FRESH = "satchel_fresh"  # marks a pooled connection that has not been used since it was opened


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


def sever(conn: AsyncConnection) -> bool:
    """Shut down the socket under ``conn``, so a call stuck on it fails now; False if there is none.

    Shut down, not closed: the driver still waits on that file descriptor, and a closed one
    would never wake it.
    """
    try:
        driver = conn.sync_connection.connection.driver_connection if conn.sync_connection else None
        fd = driver.pgconn.socket if driver is not None and not driver.closed else -1
    except Exception:  # no connection, or one already lost: nothing is waiting on it
        return False
    if fd < 0:
        return False
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        return False
    return True


class Connection(Protocol):
    """What repositories need of a connection: statements and savepoints."""

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]: ...
    async def scalar(self, statement: Executable, parameters: Any = None) -> Any: ...
    def begin_nested(self) -> AbstractAsyncContextManager[Any]: ...


class GuardedConnection:
    """One pooled connection in one transaction, every round trip under the database's guard."""

    def __init__(self, conn: AsyncConnection, guard: Guard) -> None:
        self._conn = conn
        self._guard = guard

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        return await self._call(lambda: self._conn.execute(statement, parameters))

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        return await self._call(lambda: self._conn.scalar(statement, parameters))

    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        """A savepoint: rolled back if the block raises, released otherwise."""
        savepoint = await self._call(lambda: self._conn.begin_nested().start())
        try:
            yield
        except BaseException:
            if savepoint.is_active and not self._conn.invalidated:
                await self._call(savepoint.rollback)
            raise
        if savepoint.is_active:
            await self._call(savepoint.commit)

    async def commit(self) -> None:
        await self._call(self._conn.commit)

    async def release(self) -> None:
        """Roll back what was not committed and give the connection back to the pool.

        A connection that failed or timed out is discarded instead: never handed to the
        pool for a rollback that would hang on a stalled server. Releasing never raises
        ServiceUnavailable: whatever the unit of work did is decided by then.
        """
        conn = self._conn
        try:
            if conn.in_transaction() and not conn.invalidated:
                await self._guard.call(conn.rollback, interrupt=lambda: sever(conn))
        except ServiceUnavailable:
            pass  # the rollback failed: the connection is now invalid, and closing it below discards it
        finally:
            if conn.in_transaction() and not conn.invalidated:
                await conn.invalidate()  # interrupted mid-rollback: drop it rather than trust it
            await conn.close()

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        conn = self._conn
        try:
            return await self._guard.call(operation, interrupt=lambda: sever(conn))
        except DataError as exc:
            # Input no column can hold (a NUL in text, a number out of range): the request is
            # wrong, not the database. Input is validated earlier; this is the backstop.
            log.warning("database.invalid_input", error=type(exc.orig).__name__)
            raise InvalidInput(UNSTORABLE) from None


class _Checkout:
    """The connection a check-out is testing, so a stuck test can be severed."""

    def __init__(self) -> None:
        self.conn: AsyncConnection | None = None
        self.severed = False

    def sever(self) -> bool:
        self.severed = self.conn is not None and sever(self.conn)
        return self.severed


class Database:
    """The async engine of one process, whose units of work are guarded round trip by round trip."""

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
            # No pool_pre_ping: its ping could not be interrupted; ``connect`` tests reused connections itself.
            options |= {"pool_size": pool_size, "max_overflow": pool_size, "pool_timeout": timeout}
        else:  # no pool: connections live exactly as long as one unit of work
            options |= {"poolclass": NullPool}
        self.engine: AsyncEngine = create_async_engine(sqlalchemy_url(database_url), **options)
        event.listen(self.engine.sync_engine, "connect", _mark_fresh)
        self.guard = Guard("database", timeout=timeout, is_outage=is_outage)

    async def connect(self) -> GuardedConnection:
        """A live connection in a new transaction.

        A connection reused from the pool is tested first with one round trip; if the server
        dropped it (a restart), another is taken: nothing has run on it, so that is safe.
        """
        checkout = _Checkout()
        conn = await self.guard.call(lambda: self._checkout(checkout), interrupt=checkout.sever)
        return GuardedConnection(conn, self.guard)

    async def _checkout(self, checkout: _Checkout) -> AsyncConnection:
        for attempt in (1, 2):
            conn = await self.engine.connect()
            checkout.conn = conn
            try:
                if _take_fresh(conn):
                    await conn.begin()  # just opened: the server answered moments ago
                else:
                    await conn.exec_driver_sql("SELECT 1")  # also begins the transaction
                return conn
            except DBAPIError as exc:
                checkout.conn = None
                await _discard(conn)
                if attempt == 2 or checkout.severed or not exc.connection_invalidated:
                    raise
            except BaseException:
                checkout.conn = None
                await _discard(conn)
                raise
        raise AssertionError("unreachable")

    async def ping(self) -> None:
        conn = await self.connect()
        await conn.release()

    async def close(self) -> None:
        await self.engine.dispose()


def _mark_fresh(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_FRESH] = True


def _take_fresh(conn: AsyncConnection) -> bool:
    info = conn.sync_connection.connection.info if conn.sync_connection else {}
    return bool(info.pop(_FRESH, False))


async def _discard(conn: AsyncConnection) -> None:
    """Close a connection without a round trip: it is invalidated first, so the pool drops it."""
    if not conn.invalidated:
        await conn.invalidate()
    await conn.close()


def sync_engine(database_url: str) -> sa.Engine:
    """A blocking engine for migrations, workers and one-off commands."""
    return sa.create_engine(sqlalchemy_url(database_url), pool_pre_ping=True, hide_parameters=True)
