"""This code's schema revisions, and whether a database is ready for it (factor V).

Revisions are numbered in sequence by their files' names (``0001_releases.py``, ``0002_…``), so they are read
here without alembic, whose import alone would add half a second to a web process's start; the migration
tests hold these names to alembic's own chain. A web process is not ready while its database's schema is
behind its code: its release step (``satchel migrate``) has not run yet, and every request would fail.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import ProgrammingError

from satchel.adapters.db.engine import Database
from satchel.ports.health import ServiceUnavailable

VERSIONS = Path(__file__).parent / "migrations" / "versions"
_CURRENT = sa.text("SELECT version_num FROM alembic_version")


@cache
def revisions() -> tuple[str, ...]:
    """Every revision this code knows, oldest first."""
    return tuple(sorted(path.name.partition("_")[0] for path in VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py")))


def head() -> str:
    return revisions()[-1]


def is_later_release(revision: str) -> bool:
    """Whether ``revision`` is a later release's migration: numbered after this code's head. Anything else this
    code does not know (a typo, a branch's migration, damage) is not taken for one."""
    return revision.isdigit() and len(revision) == len(head()) and revision > head()


def unready(revision: str | None) -> str | None:
    """Why a database whose schema is at ``revision`` is not ready for this code; None when it is: at this code's
    head, or at a later release's (migrations only ever add, so a rolled-back release runs on its schema)."""
    if revision == head() or (revision is not None and is_later_release(revision)):
        return None
    if revision is None or revision in revisions():
        at = "no schema yet" if revision is None else f"schema at {revision}"
        return f"{at}, this release needs {head()}: run `satchel migrate` (the release step)"
    return f"schema at {revision}, which is not this code's: restore the right database or release its code"


class SchemaProbe:
    """Readiness of the database's schema for this code. Asked until it is ready once, then never again: a
    schema only moves forward."""

    name = "schema"

    def __init__(self, database: Database) -> None:
        self._database = database
        self._ready = False

    async def ping(self) -> None:
        if self._ready:
            return
        conn = await self._database.connect()
        try:
            revision = await conn.scalar(_CURRENT)
        except ProgrammingError:  # no alembic_version table: an empty database
            revision = None
        finally:
            await conn.release()
        if reason := unready(revision):
            raise ServiceUnavailable(self.name, reason)
        self._ready = True
