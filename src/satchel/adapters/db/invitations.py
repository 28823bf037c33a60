"""Invitations in SQL: the hash of each link's token, and its use in one conditional statement."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from satchel.adapters.db.engine import Connection
from satchel.adapters.db.schema import invitations
from satchel.domain.invitations import INVITATION_STATUSES, Invitation

_COLUMNS = [c for c in invitations.c if c.name != "token_hash"]
col = invitations.c


def _invitation(row: Any) -> Invitation:
    return Invitation(**{column.name: row._mapping[column.name] for column in _COLUMNS})


def _pending(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(col.accepted_at.is_(None), col.revoked_at.is_(None), col.expires_at > now)


def has_status(status: str, now: datetime) -> sa.ColumnElement[bool]:
    """Invitations whose ``Invitation.status`` at ``now`` is ``status``, in the same order of precedence."""
    conditions = {
        "accepted": col.accepted_at.is_not(None),
        "revoked": sa.and_(col.accepted_at.is_(None), col.revoked_at.is_not(None)),
        "expired": sa.and_(col.accepted_at.is_(None), col.revoked_at.is_(None), col.expires_at <= now),
        "pending": _pending(now),
    }
    assert set(conditions) == set(INVITATION_STATUSES), "every status the domain knows"
    return conditions[status]


class SqlInvitations:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add(
        self,
        *,
        email: str,
        is_admin: bool,
        token_hash: str,
        invited_by_email: str | None,
        expires_at: datetime,
        now: datetime,
    ) -> Invitation:
        values = {"email": email, "is_admin": is_admin, "token_hash": token_hash, "invited_by_email": invited_by_email}
        insert = sa.insert(invitations).values(**values, expires_at=expires_at, created_at=now).returning(*_COLUMNS)
        return _invitation((await self.conn.execute(insert)).one())

    async def _one(self, condition: sa.ColumnElement[bool]) -> Invitation | None:
        row = (await self.conn.execute(sa.select(*_COLUMNS).where(condition))).one_or_none()
        return _invitation(row) if row else None

    async def get(self, invitation_id: int) -> Invitation | None:
        return await self._one(col.id == invitation_id)

    async def by_token(self, token_hash: str) -> Invitation | None:
        return await self._one(col.token_hash == token_hash)

    async def pending_for(self, email: str, now: datetime) -> Invitation | None:
        query = sa.select(*_COLUMNS).where(col.email == email, _pending(now)).order_by(col.id.desc()).limit(1)
        row = (await self.conn.execute(query)).one_or_none()
        return _invitation(row) if row else None

    async def list(self, *, status: str | None, now: datetime, limit: int, offset: int) -> tuple[list[Invitation], int]:
        query = sa.select(*_COLUMNS, sa.func.count().over().label("total"))
        if status is not None:
            query = query.where(has_status(status, now))
        query = query.order_by(col.created_at.desc(), col.id.desc()).limit(limit).offset(offset)
        rows = (await self.conn.execute(query)).all()
        found = [_invitation(r) for r in rows]
        if rows or not offset:
            return found, int(rows[0].total) if rows else 0
        count = sa.select(sa.func.count()).select_from(query.order_by(None).limit(None).offset(None).subquery())
        return found, int(await self.conn.scalar(count) or 0)

    async def renew(self, invitation_id: int, *, token_hash: str, expires_at: datetime) -> bool:
        result = await self.conn.execute(
            sa.update(invitations)
            .where(col.id == invitation_id, col.accepted_at.is_(None), col.revoked_at.is_(None))
            .values(token_hash=token_hash, expires_at=expires_at)
        )
        return result.rowcount == 1

    async def revoke(self, invitation_id: int, now: datetime) -> bool:
        result = await self.conn.execute(
            sa.update(invitations)
            .where(col.id == invitation_id, col.accepted_at.is_(None), col.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return result.rowcount == 1

    async def accept(self, token_hash: str, now: datetime) -> Invitation | None:
        # One statement: a concurrent accept waits for this row's lock, then finds it no longer pending.
        update = (
            sa.update(invitations)
            .where(col.token_hash == token_hash, _pending(now))
            .values(accepted_at=now)
            .returning(*_COLUMNS)
        )
        row = (await self.conn.execute(update)).one_or_none()
        return _invitation(row) if row else None

    async def accept_for(self, email: str, now: datetime) -> Invitation | None:
        newest = sa.select(col.id).where(col.email == email, _pending(now)).order_by(col.id.desc()).limit(1)
        update = (
            sa.update(invitations)
            .where(col.id == newest.scalar_subquery(), _pending(now))
            .values(accepted_at=now)
            .returning(*_COLUMNS)
        )
        row = (await self.conn.execute(update)).one_or_none()
        return _invitation(row) if row else None
