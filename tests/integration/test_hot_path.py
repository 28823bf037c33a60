"""What small requests cost the database: reads outside transactions, one round trip per share, a pool that
stays its size, and connections the server dropped replaced without failing a request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from satchel.adapters.db import accounts, sharing
from satchel.adapters.db import files as file_rows
from satchel.adapters.db.engine import Connection, Database
from satchel.adapters.db.files import SqlFiles
from satchel.adapters.db.queries import Query, Row
from satchel.adapters.db.sharing import SqlShares
from satchel.adapters.db.unit_of_work import SqlUnitOfWork
from satchel.runtime.logging import configure_logging, get_logger, log_request

from support.app import App, AppFactory


def backend_state(url: str, pid: int) -> str:
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    assert row is not None
    return str(row[0])


def test_reads_run_outside_a_transaction_and_the_first_write_begins_one(database_url: str) -> None:
    async def scenario() -> list[str]:
        database = Database(database_url)
        states = []
        try:
            conn = await database.connect()
            try:
                pid = int(await conn.scalar(sa.select(sa.func.pg_backend_pid())))
                states.append(await asyncio.to_thread(backend_state, database_url, pid))
                await conn.execute(sa.text("SELECT 1"))  # not known to be a plain read: a transaction begins
                states.append(await asyncio.to_thread(backend_state, database_url, pid))
                await conn.commit()
                states.append(await asyncio.to_thread(backend_state, database_url, pid))
            finally:
                await conn.release()
        finally:
            await database.close()
        return states

    assert asyncio.run(scenario()) == ["idle", "idle in transaction", "idle"]


def test_the_engine_of_the_workers_statements_still_runs_them_in_one_transaction(database_url: str) -> None:
    async def same_transaction() -> bool:
        database = Database(database_url)
        try:
            async with database.engine.begin() as conn:
                first = await conn.scalar(sa.select(sa.func.now()))
                await asyncio.sleep(0.01)
                return bool(first == await conn.scalar(sa.select(sa.func.now())))
        finally:
            await database.close()

    assert asyncio.run(same_transaction())


class CountingConnection:
    """A real connection that counts its round trips."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.round_trips = 0

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        self.round_trips += 1
        return await self.conn.execute(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        self.round_trips += 1
        return await self.conn.scalar(statement, parameters)

    async def rows(self, query: Query, **parameters: Any) -> list[Row]:
        self.round_trips += 1
        return await self.conn.rows(query, **parameters)

    def begin_nested(self) -> Any:
        return self.conn.begin_nested()


def test_a_share_and_its_files_are_read_in_one_round_trip(app: App) -> None:
    owner = app.account()
    ids = [app.upload(owner, f"{name}.txt", name.encode(), share="false")["file"]["id"] for name in ("b", "a", "c")]
    token = app.share(owner, ids)["token"]

    async def open_share() -> tuple[list[str], list[str], int]:
        conn = await app.services.database.connect()
        try:
            counting = CountingConnection(conn)
            files = SqlFiles(counting)
            share = await SqlShares(counting, files).by_token(token)
            assert share is not None
            found = await files.get_many(share.file_ids)
            return share.file_ids, [f.id for f in found], counting.round_trips
        finally:
            await conn.release()

    file_ids, found, round_trips = app.call(open_share)
    assert file_ids == found == ids, "the files in the order they were shared"
    assert round_trips == 1


def test_precompiled_reads_return_what_sqlalchemy_returns(app: App) -> None:
    owner = app.account()
    uploaded = app.upload(owner, "notes.txt", b"hello")
    share_id, token = uploaded["share"]["id"], uploaded["share"]["token"]
    parameters: list[tuple[Query, dict[str, Any]]] = [
        (accounts._USER, {"user_id": owner.id}),
        (file_rows._FILES, {"ids": [uploaded["file"]["id"]]}),
        (sharing._SHARE, {"share_id": share_id}),
        (sharing._SHARE_WITH_FILES, {"token": token}),
        *[(query, {"owner_id": owner.id, "limit": 10, "offset": 0}) for query in file_rows._PAGES.values()],
    ]

    async def both_ways() -> None:
        async with app.services.database.engine.connect() as conn:
            by_owner = sa.text("SELECT token_hash FROM api_tokens WHERE user_id = :u")
            stored_hash = await conn.scalar(by_owner, {"u": owner.id})
            parameters.append((accounts._TOKEN_OWNER, {"token_hash": stored_hash}))
            for query, values in parameters:
                expected = [dict(row._mapping) for row in await conn.execute(query.statement, values)]
                assert expected, "each query finds something here"
                assert await query.rows(conn, values) == expected

    app.call(both_ways)


@pytest.fixture
def own_app(make_app: AppFactory, own_database: str) -> Iterator[App]:
    with make_app(DATABASE_URL=own_database) as running:
        yield running


def test_connections_the_server_ended_are_replaced_without_failing_a_request(own_app: App, own_database: str) -> None:
    owner = own_app.account()
    share = own_app.upload(owner, "notes.txt", b"hello")["share"]["url"]
    for _ in range(3):
        assert own_app.client.get(share).status_code == 200
        assert own_app.client.get("/api/files", headers=owner.auth).status_code == 200

    with psycopg.connect(own_database, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert ended and ended[0] >= 1, "the app held pooled connections"

    assert own_app.client.get(share).status_code == 200
    assert own_app.client.get("/api/files", headers=owner.auth).status_code == 200
    assert own_app.client.get("/readyz").status_code == 200


def test_the_pool_never_exceeds_its_size_under_64_concurrent_units_of_work(own_database: str) -> None:
    size = 4

    async def burst(database: Database) -> set[int]:
        async def one() -> int:
            async with SqlUnitOfWork(database) as uow:
                await uow.users.list()
                conn = uow.users.conn
                return int(await conn.scalar(sa.select(sa.func.pg_backend_pid(), sa.func.pg_sleep(0.01))))

        return set(await asyncio.gather(*(one() for _ in range(64))))

    def connections() -> int:
        with psycopg.connect(own_database, autocommit=True) as admin:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
        return int(row[0]) if row else 0

    async def scenario() -> tuple[set[int], set[int], int]:
        database = Database(own_database, pool_size=size)
        try:
            first = await burst(database)
            second = await burst(database)
            return first, second, await asyncio.to_thread(connections)
        finally:
            await database.close()

    first, second, open_after = asyncio.run(scenario())
    assert len(first) <= size and open_after <= size
    assert second == first, "the same connections serve the next burst: none was closed and reopened"


def test_the_access_log_line_is_the_one_the_general_logger_writes(
    restore_logging: None, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging(process="web", release="r1")
    fields: dict[str, Any] = {
        "method": "GET", "path": "/x/sat_secret", "status": 200, "duration_ms": 1.5, "client": "127.0.0.1",
    }  # fmt: skip
    capfd.readouterr()
    get_logger("satchel.http").info("http.request", **fields)
    log_request("satchel.http", "http.request", **fields)
    general, direct = (json.loads(line) for line in capfd.readouterr().out.splitlines())
    general.pop("timestamp"), direct.pop("timestamp")
    assert list(direct.items()) == list(general.items())
    assert direct["path"] == "/x/sat_***"
