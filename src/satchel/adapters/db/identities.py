"""Password resets and linked identities in SQL: how an account is got back into, or reached from elsewhere."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from satchel.adapters.db.engine import Connection
from satchel.adapters.db.schema import identities, password_resets, users
from satchel.domain.accounts import User
from satchel.domain.identities import AlreadyLinked, LinkedIdentity
from satchel.domain.password_resets import PasswordReset

_RESET_COLUMNS = [c for c in password_resets.c if c.name != "token_hash"]
resets = password_resets.c


def _reset(row: Any) -> PasswordReset:
    return PasswordReset(**{column.name: row._mapping[column.name] for column in _RESET_COLUMNS})


def _pending(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(resets.used_at.is_(None), resets.expires_at > now)


class SqlPasswordResets:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add(self, *, user_id: int, token_hash: str, expires_at: datetime, now: datetime) -> PasswordReset:
        # A rerun of the mail job makes the same token: the row it made the first time is the one.
        insert = (
            pg_insert(password_resets)
            .values(user_id=user_id, token_hash=token_hash, expires_at=expires_at, created_at=now)
            .on_conflict_do_nothing(index_elements=["token_hash"])
        )
        await self.conn.execute(insert)
        found = await self.by_token(token_hash)
        assert found is not None, "just written, or written before"
        return found

    async def by_token(self, token_hash: str) -> PasswordReset | None:
        query = sa.select(*_RESET_COLUMNS).where(resets.token_hash == token_hash)
        row = (await self.conn.execute(query)).one_or_none()
        return _reset(row) if row else None

    async def use(self, token_hash: str, now: datetime) -> PasswordReset | None:
        # One statement: a concurrent use waits for this row's lock, then finds it no longer pending.
        update = (
            sa.update(password_resets)
            .where(resets.token_hash == token_hash, _pending(now))
            .values(used_at=now)
            .returning(*_RESET_COLUMNS)
        )
        row = (await self.conn.execute(update)).one_or_none()
        return _reset(row) if row else None

    async def end_all(self, user_id: int, now: datetime) -> int:
        update = sa.update(password_resets).where(resets.user_id == user_id, resets.used_at.is_(None))
        result = await self.conn.execute(update.values(used_at=now))
        return int(result.rowcount)


class SqlIdentities:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add(self, *, issuer: str, subject: str, user_id: int, email: str, now: datetime) -> LinkedIdentity:
        values = {"issuer": issuer, "subject": subject, "user_id": user_id, "email": email, "created_at": now}
        try:
            async with self.conn.begin_nested():
                insert = sa.insert(identities).values(**values).returning(*identities.c)
                row = (await self.conn.execute(insert)).one()
        except IntegrityError:  # a concurrent first sign-in of the same identity won the race
            raise AlreadyLinked() from None
        return LinkedIdentity(**row._mapping)

    async def user_of(self, issuer: str, subject: str) -> User | None:
        query = (
            sa.select(users)
            .join(identities, identities.c.user_id == users.c.id)
            .where(identities.c.issuer == issuer, identities.c.subject == subject)
        )
        row = (await self.conn.execute(query)).one_or_none()
        return User(**row._mapping) if row else None

    async def used(self, issuer: str, subject: str, now: datetime) -> None:
        named = sa.and_(identities.c.issuer == issuer, identities.c.subject == subject)
        await self.conn.execute(sa.update(identities).where(named).values(last_used_at=now))
