"""The release step migrates PostgreSQL and records the release; every round trip to it is guarded."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psutil
import psycopg
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from satchel.adapters.db.engine import Database, sync_engine
from satchel.adapters.db.migrate import alembic_config, current_revision, migrate
from satchel.adapters.db.revisions import SchemaProbe, head, revisions
from satchel.adapters.db.unit_of_work import SqlUnitOfWork
from satchel.domain.errors import InvalidInput
from satchel.ports.health import ServiceUnavailable
from satchel.runtime.embedded import EmbeddedPostgres

T = TypeVar("T")


def releases(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT release_id, schema_revision FROM releases ORDER BY id").fetchall()
    return [(release, revision) for release, revision in rows]


def test_migrating_an_empty_database_brings_it_to_head_and_records_the_release(empty_database: str) -> None:
    assert current_revision(empty_database) is None
    before, after = migrate(empty_database, "release-1")
    assert before is None
    assert after == head()
    assert current_revision(empty_database) == after
    assert releases(empty_database) == [("release-1", after)]


def test_migrating_again_changes_no_schema_but_records_another_release(empty_database: str) -> None:
    _, head = migrate(empty_database, "release-1")
    before, after = migrate(empty_database, "release-2")
    assert before == after == head
    assert releases(empty_database) == [("release-1", head), ("release-2", head)]


def test_the_revisions_read_from_file_names_are_alembics_chain_in_order() -> None:
    script = ScriptDirectory.from_config(alembic_config(""))
    chain = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert list(revisions()) == chain and head() == script.get_current_head() == chain[-1]


def test_the_schema_probe_is_ready_only_at_this_codes_head_or_a_later_releases(empty_database: str) -> None:
    """An empty database, one a release behind, one this code cannot place, head, and a later release's."""

    def probe(revision: str | None) -> str:
        if revision is not None:
            with psycopg.connect(empty_database) as conn:
                conn.execute("UPDATE alembic_version SET version_num = %s", [revision])

        async def ask() -> str:
            database = Database(empty_database)
            try:
                await SchemaProbe(database).ping()
                return "ok"
            except ServiceUnavailable as exc:
                assert exc.service == "schema"
                return exc.reason
            finally:
                await database.close()

        return asyncio.run(ask())

    assert probe(None).startswith("no schema yet") and "satchel migrate" in probe(None)
    migrate(empty_database, "release-1")
    behind = revisions()[-2]
    assert probe(behind) == f"schema at {behind}, this release needs {head()}: run `satchel migrate` (the release step)"
    assert "not this code's" in probe("0002_typo") and "not this code's" in probe("abc123")
    assert probe(head()) == "ok"
    assert probe(str(int(head()) + 1).zfill(len(head()))) == "ok", "a rolled-back release runs on the later schema"


def test_the_session_database_is_migrated(database_url: str) -> None:
    assert current_revision(database_url) == head()


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


# --- Failure behaviour, on a server each test may pause, kill and restart --------------------------


@pytest.fixture(scope="module")
def own_server() -> Iterator[EmbeddedPostgres]:
    path = Path(tempfile.mkdtemp(prefix="satchel-test-own-postgres-"))
    server = EmbeddedPostgres(path / "postgres", durable=False)
    server.start()
    migrate(server.url, "test")
    yield server
    server.resume()
    server.stop()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def owned_postgres(own_server: EmbeddedPostgres) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL server this module alone uses; running again after each test, whatever it did."""
    yield own_server
    own_server.resume()
    if own_server.process is None or own_server.process.poll() is not None:
        own_server.start()


def with_database(url: str, work: Callable[[Database], Awaitable[T]], *, timeout: float = 5.0) -> T:
    async def scenario() -> T:
        database = Database(url, timeout=timeout)
        try:
            return await work(database)
        finally:
            await database.close()

    return asyncio.run(scenario())


async def count_users(database: Database) -> int:
    async with SqlUnitOfWork(database) as uow:
        return len(await uow.users.list())


async def timed(work: Awaitable[object]) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        await work
    except Exception as exc:
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


async def until_it_answers(work: Callable[[], Awaitable[object]], within: float) -> float:
    started = time.monotonic()
    while True:
        try:
            await work()
            return time.monotonic() - started
        except ServiceUnavailable:
            if time.monotonic() - started > within:
                raise
            await asyncio.sleep(0.05)


def test_a_paused_server_fails_units_of_work_within_the_timeout_and_is_used_again_once_resumed(
    owned_postgres: EmbeddedPostgres,
) -> None:
    async def scenario(database: Database) -> None:
        await count_users(database)  # pooled connections now exist: they must not be trusted while paused
        owned_postgres.pause()
        outcomes = await asyncio.gather(*(timed(count_users(database)) for _ in range(6)))
        for error, took in outcomes:
            assert isinstance(error, ServiceUnavailable) and error.service == "database"
            assert took < 1.0 + 0.5, f"took {took:.2f}s against a 1s timeout"
        error, took = await timed(count_users(database))
        assert isinstance(error, ServiceUnavailable) and "circuit open" in error.reason
        assert took < 0.1, "an open circuit fails fast"

        owned_postgres.resume()
        assert await until_it_answers(lambda: count_users(database), within=5) < 5

    with_database(owned_postgres.url, scenario, timeout=1.0)


def test_each_statement_is_guarded_not_only_the_check_out(owned_postgres: EmbeddedPostgres) -> None:
    async def scenario(database: Database) -> None:
        async with SqlUnitOfWork(database) as uow:
            await uow.users.list()
            owned_postgres.pause()
            error, took = await timed(uow.users.by_email("someone@example.test"))
        assert isinstance(error, ServiceUnavailable)
        assert took < 1.5

    with_database(owned_postgres.url, scenario, timeout=1.0)


def test_a_killed_server_is_service_unavailable_and_once_restarted_is_used_without_failing_a_request(
    owned_postgres: EmbeddedPostgres,
) -> None:
    async def scenario(database: Database) -> None:
        await asyncio.gather(*(count_users(database) for _ in range(5)))  # several pooled connections
        owned_postgres.kill()
        error, took = await timed(count_users(database))
        assert isinstance(error, ServiceUnavailable) and error.service == "database"
        assert took < 1

        owned_postgres.start()
        await until_it_answers(lambda: count_users(database), within=5)

        owned_postgres.kill()  # this time nothing notices before the server is back:
        owned_postgres.start()  # the pool still holds connections to the dead one
        outcomes = await asyncio.gather(*(timed(count_users(database)) for _ in range(5)))
        assert [error for error, _ in outcomes] == [None] * 5, "a dropped pooled connection is replaced, not failed"

    with_database(owned_postgres.url, scenario)


def test_killing_the_embedded_server_ends_every_backend_and_it_restarts_on_the_same_port_and_data(
    owned_postgres: EmbeddedPostgres,
) -> None:
    with psycopg.connect(owned_postgres.url) as conn:
        conn.execute("SET synchronous_commit = on")  # this test server defers commits otherwise
        conn.execute("CREATE TABLE IF NOT EXISTS survives_a_crash (n int)")
        conn.execute("INSERT INTO survives_a_crash VALUES (1)")
        conn.commit()
    assert owned_postgres.process is not None
    server = psutil.Process(owned_postgres.process.pid)
    backends = server.children(recursive=True)
    assert backends, "a running server has background processes"
    port = owned_postgres.port

    owned_postgres.kill()
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in [server, *backends])

    owned_postgres.start()
    assert owned_postgres.port == port
    with psycopg.connect(owned_postgres.url) as conn:
        assert conn.execute("SELECT count(*) FROM survives_a_crash").fetchone() == (1,)
        conn.execute("DROP TABLE survives_a_crash")


def test_connections_tell_the_server_to_end_statements_their_caller_has_given_up_on(database_url: str) -> None:
    async def statement_timeout(database: Database) -> str:
        conn = await database.connect()
        try:
            return str(await conn.scalar(sa.text("SELECT current_setting('statement_timeout')")))
        finally:
            await conn.release()

    assert with_database(database_url, statement_timeout, timeout=1.5) == "1500ms"


def test_a_value_no_column_can_hold_is_invalid_input_and_not_an_outage(database_url: str) -> None:
    async def scenario(database: Database) -> None:
        for _ in range(database.guard.failure_threshold + 1):
            with pytest.raises(InvalidInput):
                async with SqlUnitOfWork(database) as uow:
                    await uow.users.by_email("nul\x00inside@example.test")
            with pytest.raises(InvalidInput):
                async with SqlUnitOfWork(database) as uow:
                    await uow.users.get(2**70)
        assert database.guard.state == "closed"
        await count_users(database)

    with_database(database_url, scenario)


def test_sql_parameters_appear_in_no_error_text(database_url: str) -> None:
    secret = "parameter-value-7f3a9c"
    statement = sa.text("SELECT * FROM no_such_table WHERE name = :name")

    async def failing_async_statement(database: Database) -> str:
        async with database.engine.connect() as conn:
            try:
                await conn.execute(statement, {"name": secret})
            except sa.exc.DBAPIError as exc:
                return str(exc)
        raise AssertionError("the statement should have failed")

    async_text = with_database(database_url, failing_async_statement)
    assert "no_such_table" in async_text and secret not in async_text

    engine = sync_engine(database_url)
    try:
        with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError) as caught:
            conn.execute(statement, {"name": secret})
    finally:
        engine.dispose()
    assert "no_such_table" in str(caught.value) and secret not in str(caught.value)
