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
from satchel.adapters.db.schema import releases

MIGRATIONS = Path(__file__).parent / "migrations"


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


def knows_revision(revision: str) -> bool:
    """Whether this code's migrations include ``revision`` (a later release's are unknown to it)."""
    try:
        return ScriptDirectory.from_config(alembic_config("")).get_revision(revision) is not None
    except CommandError:
        return False


def current_revision(database_url: str) -> str | None:
    engine = sync_engine(database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def migrate(database_url: str, release_id: str) -> tuple[str | None, str]:
    """Upgrade to head and record the release; returns (revision before, revision after).

    A schema newer than this code (a rollback to an earlier release) is left as it is: migrations
    only ever add, so the earlier release runs on the later schema, and its release step succeeds.
    """
    before = current_revision(database_url)
    if before is not None and not knows_revision(before):
        after = before
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
