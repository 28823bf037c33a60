"""The release step (factor V): bring the schema to this code's revision, once per release."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from satchel.adapters.db.engine import sync_engine
from satchel.adapters.db.revisions import is_later_release
from satchel.adapters.db.schema import releases

MIGRATIONS = Path(__file__).parent / "migrations"
# Held for the migration's transaction (migrations/env.py): two release steps at once run one after the other.
MIGRATION_LOCK = 7431001


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = database_url
    return config


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config(""))
    head = script.get_current_head()
    assert head is not None
    return head


class UnknownSchema(Exception):
    """The database's schema revision is neither this code's nor a later release's."""


def current_revision(database_url: str) -> str | None:
    engine = sync_engine(database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def _known(revision: str) -> bool:
    try:
        found = ScriptDirectory.from_config(alembic_config("")).get_revision(revision)
    except CommandError:
        return False
    # Alembic also resolves a unique prefix ("001" as "0011"): only the revision itself is this code's.
    return found is not None and found.revision == revision


def migrate(database_url: str, release_id: str) -> tuple[str | None, str]:
    """Upgrade to head and record the release; returns (revision before, revision after).

    A schema newer than this code (a rollback to an earlier release) is left as it is: migrations
    only ever add, so the earlier release runs on the later schema, and its release step succeeds.
    """
    before = current_revision(database_url)
    if before is not None and is_later_release(before):
        after = before
    elif before is not None and not _known(before):
        raise UnknownSchema(
            f"the database's schema revision {before!r} is not one of this code's (up to {head_revision()}) "
            "nor a later release's: restore the right database or release the code that made it"
        )
    else:
        command.upgrade(alembic_config(database_url), "head")
        after = head_revision()
    engine = sync_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(releases).values(release_id=release_id, schema_revision=after))
    finally:
        engine.dispose()
    return before, after
