"""Files in SQL: their records, listed by the sorts of ``ports.FILE_SORTS``."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from satchel.adapters.db.engine import Connection
from satchel.adapters.db.queries import Query, Row
from satchel.adapters.db.schema import files, users
from satchel.domain.files import StoredFile
from satchel.ports.persistence import FILE_SORTS, FileOrder, OwnedFile


def _order(order: FileOrder) -> sa.UnaryExpression[object]:
    column = files.c[order.field]
    return column.desc() if order.descending else column.asc()


def _file_of(row: Row) -> StoredFile:
    return StoredFile(**{c.name: row[c.name] for c in files.c})


_FILES = Query(sa.select(files).where(files.c.id == sa.any_(sa.bindparam("ids", type_=ARRAY(sa.String)))))
_PAGES: dict[str, Query] = {  # by the names clients give the sorts
    sort: Query(
        sa.select(files, sa.func.count().over().label("total"))
        .where(files.c.owner_id == sa.bindparam("owner_id"))
        .order_by(_order(order), files.c.id)
        .limit(sa.bindparam("limit", type_=sa.BigInteger))
        .offset(sa.bindparam("offset", type_=sa.BigInteger))
    )
    for sort, order in FILE_SORTS.items()
}


_ORDERS: dict[str, FileOrder] = {str(sort): order for sort, order in FILE_SORTS.items()}


class SqlFiles:
    """Files. ``known`` holds the files this unit of work has read already (with a share, by its token):
    asking for them again costs no round trip. Writing a file forgets it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.known: dict[str, StoredFile] = {}

    async def add(self, file: StoredFile) -> None:
        await self.conn.execute(sa.insert(files).values(**file.__dict__))

    async def get(self, file_id: str) -> StoredFile | None:
        found = await self.get_many([file_id])
        return found[0] if found else None

    async def get_many(self, file_ids: list[str]) -> list[StoredFile]:
        found = self.known
        if not all(i in found for i in file_ids):
            found = {row["id"]: _file_of(row) for row in await self.conn.rows(_FILES, ids=list(file_ids))}
        return [found[i] for i in file_ids if i in found]

    async def list_for(self, owner_id: int, *, sort: str, limit: int, offset: int) -> tuple[list[StoredFile], int]:
        rows = await self.conn.rows(_PAGES[sort], owner_id=owner_id, limit=limit, offset=offset)
        total = rows[0]["total"] if rows else await self._count(owner_id)
        return [_file_of(r) for r in rows], total

    async def _count(self, owner_id: int) -> int:
        count = await self.conn.scalar(sa.select(sa.func.count()).where(files.c.owner_id == owner_id))
        return int(count or 0)

    async def list_all(self, *, sort: str, search: str | None, limit: int, offset: int) -> tuple[list[OwnedFile], int]:
        order = _ORDERS[sort]
        query = sa.select(files, users.c.email.label("owner_email"), sa.func.count().over().label("total")).select_from(
            files.join(users, users.c.id == files.c.owner_id)
        )
        if search:
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(sa.or_(files.c.name.ilike(pattern), users.c.email.ilike(pattern)))
        query = query.order_by(_order(order), files.c.id).limit(limit).offset(offset)
        rows = (await self.conn.execute(query)).all()
        found = [OwnedFile(StoredFile(**{c.name: r._mapping[c.name] for c in files.c}), r.owner_email) for r in rows]
        if rows or not offset:
            return found, int(rows[0].total) if rows else 0
        count = sa.select(sa.func.count()).select_from(query.order_by(None).limit(None).offset(None).subquery())
        return found, int(await self.conn.scalar(count) or 0)

    async def rename(self, file_id: str, name: str) -> None:
        self.known.pop(file_id, None)
        await self.conn.execute(sa.update(files).where(files.c.id == file_id).values(name=name))

    async def delete(self, file_id: str) -> None:
        self.known.pop(file_id, None)
        await self.conn.execute(sa.delete(files).where(files.c.id == file_id))

    async def set_scan_status(self, file_id: str, status: str) -> None:
        self.known.pop(file_id, None)
        await self.conn.execute(sa.update(files).where(files.c.id == file_id).values(scan_status=status))

    async def set_thumbnail(self, file_id: str, key: str) -> None:
        self.known.pop(file_id, None)
        await self.conn.execute(sa.update(files).where(files.c.id == file_id).values(thumbnail_key=key))

    async def set_preview_type(self, file_id: str, preview_type: str) -> None:
        self.known.pop(file_id, None)
        decided = sa.update(files).where(files.c.id == file_id, files.c.preview_type.is_(None))
        await self.conn.execute(decided.values(preview_type=preview_type))

    async def thumbnail_keys(self) -> set[str]:
        rows = await self.conn.execute(sa.select(files.c.thumbnail_key).where(files.c.thumbnail_key.is_not(None)))
        return {r.thumbnail_key for r in rows}

    async def all_keys(self) -> dict[str, tuple[str, int, str]]:
        rows = await self.conn.execute(sa.select(files.c.storage_key, files.c.id, files.c.size, files.c.sha256))
        return {r.storage_key: (r.id, r.size, r.sha256) for r in rows}
