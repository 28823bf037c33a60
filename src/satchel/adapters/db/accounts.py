"""Accounts in SQL: users and their API tokens."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from satchel.adapters.db.engine import Connection
from satchel.adapters.db.queries import Query
from satchel.adapters.db.schema import api_tokens, users
from satchel.domain.accounts import ApiToken, EmailTaken, User


def _user(row: Any) -> User:
    return User(**row._mapping)


_USER = Query(sa.select(users).where(users.c.id == sa.bindparam("user_id")))
_TOKEN_COLUMNS = [c.label(f"token_{c.name}") for c in api_tokens.c if c.name != "token_hash"]
_TOKEN_OWNER = Query(
    sa.select(users, *_TOKEN_COLUMNS)
    .join(api_tokens, users.c.id == api_tokens.c.user_id)
    .where(api_tokens.c.token_hash == sa.bindparam("token_hash"), api_tokens.c.revoked_at.is_(None))
)


def _token(row: Any) -> ApiToken:
    m = row._mapping
    return ApiToken(
        id=m["id"],
        user_id=m["user_id"],
        name=m["name"],
        prefix=m["prefix"],
        created_at=m["created_at"],
        last_used_at=m["last_used_at"],
        revoked_at=m["revoked_at"],
    )


class SqlUsers:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add(self, *, email: str, password_hash: str, is_admin: bool, quota_bytes: int) -> User:
        insert = (
            sa.insert(users)
            .values(email=email, password_hash=password_hash, is_admin=is_admin, quota_bytes=quota_bytes)
            .returning(*users.c)
        )
        try:
            async with self.conn.begin_nested():
                row = (await self.conn.execute(insert)).one()
        except IntegrityError:  # a concurrent sign-up with the same email won the race
            raise EmailTaken() from None
        return _user(row)

    async def get(self, user_id: int) -> User | None:
        rows = await self.conn.rows(_USER, user_id=user_id)
        return User(**rows[0]) if rows else None

    async def by_email(self, email: str) -> User | None:
        row = (await self.conn.execute(sa.select(users).where(users.c.email == email))).one_or_none()
        return _user(row) if row else None

    async def lock(self, user_ids: Collection[int]) -> dict[int, User]:
        query = sa.select(users).where(users.c.id.in_(sorted(user_ids))).order_by(users.c.id).with_for_update()
        return {row.id: _user(row) for row in await self.conn.execute(query)}

    async def search(self, *, search: str | None, limit: int, offset: int) -> tuple[list[User], int]:
        query = sa.select(users, sa.func.count().over().label("total"))
        if search:
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(users.c.email.ilike(pattern))
        query = query.order_by(users.c.id.desc()).limit(limit).offset(offset)  # newest first
        rows = (await self.conn.execute(query)).all()
        found = [User(**{c.name: r._mapping[c.name] for c in users.c}) for r in rows]
        if rows or not offset:
            return found, int(rows[0].total) if rows else 0
        count = sa.select(sa.func.count()).select_from(query.order_by(None).limit(None).offset(None).subquery())
        return found, int(await self.conn.scalar(count) or 0)

    async def list(self) -> list[User]:
        return [_user(r) for r in await self.conn.execute(sa.select(users).order_by(users.c.id))]

    async def set_password(self, user_id: int, password_hash: str) -> None:
        await self.conn.execute(sa.update(users).where(users.c.id == user_id).values(password_hash=password_hash))

    async def set_disabled(self, user_id: int, disabled: bool) -> None:
        await self.conn.execute(sa.update(users).where(users.c.id == user_id).values(disabled=disabled))

    async def set_admin(self, user_id: int, is_admin: bool) -> None:
        await self.conn.execute(sa.update(users).where(users.c.id == user_id).values(is_admin=is_admin))

    async def set_quota(self, user_id: int, quota_bytes: int) -> bool:
        result = await self.conn.execute(
            sa.update(users)
            .where(users.c.id == user_id, users.c.used_bytes <= quota_bytes)
            .values(quota_bytes=quota_bytes)
        )
        return result.rowcount == 1

    async def end_sessions(self, user_id: int) -> None:
        epoch = users.c.session_epoch + 1
        await self.conn.execute(sa.update(users).where(users.c.id == user_id).values(session_epoch=epoch))

    async def signed_in(self, user_id: int, at: datetime) -> None:
        await self.conn.execute(sa.update(users).where(users.c.id == user_id).values(last_signed_in_at=at))

    async def reserve_bytes(self, user_id: int, size: int) -> bool:
        result = await self.conn.execute(
            sa.update(users)
            .where(users.c.id == user_id, users.c.used_bytes + size <= users.c.quota_bytes)
            .values(used_bytes=users.c.used_bytes + size)
        )
        return result.rowcount == 1

    async def release_bytes(self, user_id: int, size: int) -> None:
        await self.conn.execute(
            sa.update(users)
            .where(users.c.id == user_id)
            .values(used_bytes=sa.func.greatest(users.c.used_bytes - size, 0))
        )


class SqlTokens:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add(self, *, user_id: int, name: str, prefix: str, token_hash: str) -> ApiToken:
        row = (
            await self.conn.execute(
                sa.insert(api_tokens)
                .values(user_id=user_id, name=name, prefix=prefix, token_hash=token_hash)
                .returning(*api_tokens.c)
            )
        ).one()
        return _token(row)

    async def owner_of(self, token_hash: str) -> tuple[ApiToken, User] | None:
        rows = await self.conn.rows(_TOKEN_OWNER, token_hash=token_hash)
        if not rows:
            return None
        row = rows[0]
        token = {c.name: row[f"token_{c.name}"] for c in api_tokens.c if c.name != "token_hash"}
        return ApiToken(**token), User(**{c.name: row[c.name] for c in users.c})

    async def list_for(self, user_id: int) -> list[ApiToken]:
        query = sa.select(api_tokens).where(api_tokens.c.user_id == user_id).order_by(api_tokens.c.id.desc())
        return [_token(r) for r in await self.conn.execute(query)]

    async def revoke(self, user_id: int, token_id: int, now: datetime) -> bool:
        result = await self.conn.execute(
            sa.update(api_tokens)
            .where(api_tokens.c.id == token_id, api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return result.rowcount == 1

    async def revoke_all(self, user_id: int, now: datetime) -> int:
        result = await self.conn.execute(
            sa.update(api_tokens)
            .where(api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return result.rowcount

    async def touch(self, token_id: int, now: datetime) -> None:
        await self.conn.execute(sa.update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now))
