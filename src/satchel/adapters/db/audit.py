"""The audit trail in SQL: events inserted in the unit of work's transaction, logged once it commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from satchel.adapters.db.engine import Connection
from satchel.adapters.db.schema import audit_events
from satchel.domain.audit import AuditEvent, AuditFilter, announce


def _where(where: AuditFilter) -> list[sa.ColumnElement[bool]]:
    c = audit_events.c
    conditions: list[sa.ColumnElement[bool]] = []
    if where.action is not None:
        conditions.append(c.action == where.action)
    if where.actor_email is not None:
        conditions.append(c.actor_email == where.actor_email)
    if where.subject is not None:
        conditions.append(c.subject == where.subject)
    if where.since is not None:
        conditions.append(c.at >= where.since)
    if where.until is not None:
        conditions.append(c.at < where.until)
    return conditions


def _event(row: Any) -> AuditEvent:
    return AuditEvent(**{c.name: row._mapping[c.name] for c in audit_events.c})


class SqlAudit:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.recorded: list[AuditEvent] = []  # written in this transaction, to be logged when it commits

    async def record(self, event: AuditEvent) -> None:
        values = {c.name: getattr(event, c.name) for c in audit_events.c if c.name != "id"}
        event.id = int(await self.conn.scalar(sa.insert(audit_events).values(**values).returning(audit_events.c.id)))
        self.recorded.append(event)

    def committed(self) -> None:
        events, self.recorded = self.recorded, []
        announce(events)

    async def list(self, where: AuditFilter, *, limit: int, offset: int) -> tuple[list[AuditEvent], int]:
        query = (
            sa.select(audit_events, sa.func.count().over().label("total"))
            .where(*_where(where))
            .order_by(audit_events.c.at.desc(), audit_events.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        rows = (await self.conn.execute(query)).all()
        if rows:
            return [_event(r) for r in rows], int(rows[0].total)
        total = await self.conn.scalar(sa.select(sa.func.count()).select_from(audit_events).where(*_where(where)))
        return [], int(total or 0)

    async def prune(self, before: datetime) -> int:
        result = await self.conn.execute(sa.delete(audit_events).where(audit_events.c.at < before))
        return int(result.rowcount)
