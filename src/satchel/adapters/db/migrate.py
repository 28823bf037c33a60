"""The release step (factor V): bring the schema to this code's revision, once per release."""

from __future__ import annotations

from pathlib import Path

import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from satchel.adapters.db.engine import sync_engine
from satchel.adapters.db.revisions import head, is_later_release, revisions
from satchel.adapters.db.schema import releases

MIGRATIONS = Path(__file__).parent / "migrations"
# Held for the migration's transaction (migrations/env.py): two release steps at once run one after the other.
MIGRATION_LOCK = 7431001


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = database_url
    return config


class UnknownSchema(Exception):
    """The database's schema revision is neither this code's nor a later release's."""


class MigrationBlocked(Exception):
    """A table the migration changes stayed held by another session past the lock timeout; nothing changed."""


def current_revision(database_url: str) -> str | None:
    engine = sync_engine(database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def migrate(database_url: str, release_id: str, *, lock_timeout: float = 10) -> tuple[str | None, str]:
    """Upgrade to head and record the release; returns (revision before, revision after).

    A schema newer than this code (a rollback to an earlier release) is left as it is: migrations
    only ever add, so the earlier release runs on the later schema, and its release step succeeds.
    A table another session holds for longer than ``lock_timeout`` seconds stops the migration, which
    changes nothing then (MigrationBlocked): the site keeps serving, and the step can run again.
    """
    before = current_revision(database_url)
    if before is not None and is_later_release(before):
        after = before
    elif before is not None and before not in revisions():
        raise UnknownSchema(
            f"the database's schema revision {before!r} is not one of this code's (up to {head()}) "
            "nor a later release's: restore the right database or release the code that made it"
        )
    else:
        config = alembic_config(database_url)
        config.attributes["lock_timeout"] = lock_timeout
        try:
            command.upgrade(config, "head")
        except sa.exc.OperationalError as exc:
            if not isinstance(exc.orig, psycopg.errors.LockNotAvailable):
                raise
            raise MigrationBlocked(
                f"a table this release changes stayed held by another session for {lock_timeout:g} s (a long "
                "transaction or a backup, say); nothing was changed: run the release step again once it ends"
            ) from None
        after = head()
    engine = sync_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(releases).values(release_id=release_id, schema_revision=after))
    finally:
        engine.dispose()
    return before, after
