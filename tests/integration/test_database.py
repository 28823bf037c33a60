"""The release step migrates PostgreSQL and records the release; the engine probes it."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from satchel.adapters.db.engine import Database
from satchel.adapters.db.migrate import current_revision, head_revision, migrate
from satchel.ports import ServiceUnavailable


def releases(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT release_id, schema_revision FROM releases ORDER BY id").fetchall()
    return [(release, revision) for release, revision in rows]


def test_migrating_an_empty_database_brings_it_to_head_and_records_the_release(empty_database: str) -> None:
    assert current_revision(empty_database) is None
    before, after = migrate(empty_database, "release-1")
    assert before is None
    assert after == head_revision()
    assert current_revision(empty_database) == after
    assert releases(empty_database) == [("release-1", after)]


def test_migrating_again_changes_no_schema_but_records_another_release(empty_database: str) -> None:
    _, head = migrate(empty_database, "release-1")
    before, after = migrate(empty_database, "release-2")
    assert before == after == head
    assert releases(empty_database) == [("release-1", head), ("release-2", head)]


def test_the_session_database_is_migrated(database_url: str) -> None:
    assert current_revision(database_url) == head_revision()


def test_ping_succeeds_against_a_running_server(database_url: str) -> None:
    async def ping() -> None:
        database = Database(database_url)
        try:
            await database.ping()
        finally:
            await database.close()

    asyncio.run(ping())


def test_ping_of_an_unreachable_server_raises_service_unavailable() -> None:
    async def ping() -> None:
        database = Database("postgresql://postgres@127.0.0.1:1/nope", timeout=1)
        try:
            await database.ping()
        finally:
            await database.close()

    with pytest.raises(ServiceUnavailable) as caught:
        asyncio.run(ping())
    assert caught.value.service == "database"


def test_migrations_build_exactly_the_schema_the_code_declares(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from satchel.adapters.db.engine import sync_engine
    from satchel.adapters.db.schema import metadata

    engine = sync_engine(database_url)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert differences == [], "write a migration for these changes"
