"""The connection of one unit of work: as few round trips as its work needs, each under the database's guard.

- No round trip before the first statement. The first statement checks a connection out of the pool and
  runs on it at once; if the server had dropped that connection (a restart, an idle timeout), the
  statement fails at once, and since nothing was written yet it runs again on another connection.
- Reads run in autocommit: a request that only reads sends no BEGIN, COMMIT or ROLLBACK. The first write
  (or savepoint) begins a transaction; ``commit`` ends it, ``release`` rolls back what was not committed.
- A call that overruns the guard's timeout has its socket shut down, so the driver fails at once as if
  the server had died (cancelling would wait on a stalled server for an answer that never comes); such a
  connection is discarded, never handed back to the pool for a rollback that would hang the same way.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.expression import Executable
from sqlalchemy.sql.functions import FunctionElement

from satchel.adapters.db.queries import Query, Row
from satchel.adapters.resilience import Guard
from satchel.domain.errors import InvalidInput
from satchel.ports.health import ServiceUnavailable
from satchel.runtime.logging import get_logger

T = TypeVar("T")

log = get_logger(__name__)
UNSTORABLE = "A value in this request cannot be stored (a NUL character, or a number too large)."
_FRESH = "satchel_fresh"  # marks a pooled connection that has not been used since it was opened


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


# Server functions with effects: in a transaction they wait for its outcome (a notification is sent on
# commit, an advisory lock taken for it), so a statement calling one is not a plain read.
_EFFECTS = ("pg_notify", "pg_advisory", "pg_try_advisory", "nextval", "setval")


def reads_only(statement: Executable) -> bool:
    """A plain SELECT: it may run outside a transaction, and run again. Not one that locks rows, nor
    one that calls a server function with effects."""
    if not isinstance(statement, sa.Select) or statement._for_update_arg is not None:
        return False
    return not any(
        isinstance(column, FunctionElement) and str(getattr(column, "name", "")).startswith(_EFFECTS)
        for column in statement.selected_columns
    )


class GuardedConnection:
    """One unit of work on one pooled connection, checked out by its first statement."""

    def __init__(self, engine: AsyncEngine, guard: Guard) -> None:
        self._engine = engine
        self._guard = guard
        self._conn: AsyncConnection | None = None
        self._in_transaction = False
        self._severed = False

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        if not self._in_transaction and not reads_only(statement):
            await self._begin()
        return await self._call(lambda conn: conn.execute(statement, parameters))

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        return (await self.execute(statement, parameters)).scalar()

    async def rows(self, query: Query, **parameters: Any) -> list[Row]:
        """The rows of a precompiled read (see ``queries``)."""
        arguments: Mapping[str, Any] = parameters
        return await self._call(lambda conn: query.rows(conn, arguments))

    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        """A savepoint: rolled back if the block raises, released otherwise."""
        if not self._in_transaction:
            await self._begin()
        savepoint = await self._call(lambda conn: conn.begin_nested().start())
        try:
            yield
        except BaseException:
            if savepoint.is_active and self._conn is not None and not self._conn.invalidated:
                await self._call(lambda _: savepoint.rollback())
            raise
        if savepoint.is_active:
            await self._call(lambda _: savepoint.commit())

    async def commit(self) -> None:
        """Commit what was written; a unit of work that only read has nothing to commit."""
        if self._in_transaction:
            await self._call(lambda conn: conn.commit())
            self._in_transaction = False

    async def release(self) -> None:
        """Roll back what was not committed and give the connection back to the pool.

        Releasing never raises ServiceUnavailable: whatever the unit of work did is decided by then.
        """
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._in_transaction and not (self._severed or _lost(conn)):
            try:
                await self._guard.call(conn.rollback, interrupt=lambda: sever(conn))
                self._in_transaction = False
            except ServiceUnavailable:
                pass  # the connection is discarded below
        if self._in_transaction or self._severed or _lost(conn):
            await discard(conn)
        else:
            await conn.close()

    async def _begin(self) -> None:
        await self._call(lambda conn: conn.exec_driver_sql("BEGIN"))
        self._in_transaction = True

    async def _call(self, operation: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        try:
            return await self._guard.call(lambda: self._run(operation), interrupt=self._sever)
        except (DataError, psycopg.DataError) as exc:
            # Input no column can hold (a NUL in text, a number out of range): the request is
            # wrong, not the database. Input is validated earlier; this is the backstop.
            log.warning("database.invalid_input", error=type(getattr(exc, "orig", exc)).__name__)
            raise InvalidInput(UNSTORABLE) from None

    async def _run(self, operation: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        if self._conn is not None:
            return await operation(self._conn)
        while True:  # the first round trip: nothing is written yet, so it may run again elsewhere
            conn = self._conn = await self._engine.connect()
            fresh = _take_fresh(conn)
            try:
                return await operation(conn)
            except Exception as exc:
                if fresh or self._severed or not (_disconnect(exc) and _lost(conn)):
                    raise
                self._conn = None
                await discard(conn)  # dropped by the server while pooled; the next one may be too

    def _sever(self) -> bool:
        self._severed = self._conn is not None and sever(self._conn)
        return self._severed


def mark_fresh(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    """The pool's ``connect`` event: this connection was opened just now."""
    record.info[_FRESH] = True


def _take_fresh(conn: AsyncConnection) -> bool:
    info = conn.sync_connection.connection.info if conn.sync_connection else {}
    return bool(info.pop(_FRESH, False))


def _disconnect(exc: Exception) -> bool:
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, OSError))


def _lost(conn: AsyncConnection) -> bool:
    """Is the connection unusable: invalidated, or its driver connection closed or broken?"""
    if conn.invalidated or conn.sync_connection is None:
        return True
    try:
        driver = conn.sync_connection.connection.driver_connection
    except Exception:
        return True
    return driver is None or bool(driver.closed or driver.broken)


async def discard(conn: AsyncConnection) -> None:
    """Close a connection without a round trip: it is invalidated first, so the pool drops it."""
    if not conn.invalidated:
        await conn.invalidate()
    await conn.close()
