"""The reads every request makes, compiled once and run straight on the driver.

Building a SQLAlchemy statement and executing it through the asyncio bridge costs more CPU than the
round trip it makes (a few hundred microseconds for a select, measured on the share page). So the hot
reads are declared once, with bind parameters, compiled once per dialect, and executed on the psycopg
connection beneath the pooled SQLAlchemy one; psycopg prepares them on the server once they repeat.

Rows come back as dicts of the driver's own types. For the columns these queries read (text, integers,
booleans, timestamps with time zone, text arrays) they are the values SQLAlchemy itself would return;
``tests/integration/test_hot_path.py`` holds each query to that.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg.rows import dict_row
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import ClauseElement

Row = dict[str, Any]


class Query:
    """One read, compiled on first use, whose parameters are named by its ``sa.bindparam``s."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._sql: str | None = None

    def sql(self, dialect: Dialect) -> str:
        if self._sql is None:
            self._sql = str(self.statement.compile(dialect=dialect))
        return self._sql

    async def rows(self, conn: AsyncConnection, parameters: Mapping[str, Any]) -> list[Row]:
        """Every row, on ``conn``'s driver connection (in its transaction, when one is open)."""
        driver = conn.sync_connection.connection.driver_connection if conn.sync_connection else None
        assert driver is not None, "a checked-out connection has a driver connection"
        async with driver.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(self.sql(conn.dialect), parameters)
            rows: list[Row] = await cursor.fetchall()
        return rows
