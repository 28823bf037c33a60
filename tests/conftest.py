"""Fixtures that find or start the real backing services the tests talk to.

``DATABASE_URL``, ``REDIS_URL`` and ``AMQP_URL`` name servers to use when set
(CI points them at the machine's own); otherwise PostgreSQL and Redis are
started from the same wheels ``satchel dev`` uses. Every test session gets a
fresh database of its own, so runs never see each other's rows.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
import structlog
from starlette.testclient import TestClient

from satchel.adapters.db.migrate import migrate
from satchel.runtime.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from satchel.settings import Settings, load_settings
from satchel.web.app import create_app

sys.path.insert(0, str(Path(__file__).parent))

from support import clamd as clamd_support
from support.app import App, AppFactory
from support.moto import MotoServer


def _worker_index() -> int:
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


@pytest.fixture(scope="session")
def server_dir() -> Iterator[Path]:
    """Where this session's own servers keep their data: outside pytest's numbered temp folders,
    which a second pytest session on the machine may clean away while this one still runs."""
    path = Path(tempfile.mkdtemp(prefix="satchel-test-servers-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server(server_dir: Path) -> Iterator[str]:
    """An admin URL of a PostgreSQL server: the one named by DATABASE_URL, or an embedded one."""
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    server = EmbeddedPostgres(server_dir / "postgres", durable=False)
    server.start()
    yield server.url
    server.stop()


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@contextmanager
def temporary_database(server: str, prefix: str) -> Iterator[str]:
    """A new, empty database on ``server``, dropped afterwards whatever still uses it."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(server, name)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def fresh_database(postgres_server: str) -> Iterator[str]:
    """An empty database created for this session and dropped after it."""
    with temporary_database(postgres_server, "satchel_test") as url:
        yield url


@pytest.fixture(scope="session")
def database_url(fresh_database: str) -> str:
    """A database migrated to the current schema, as ``satchel migrate`` leaves it."""
    migrate(fresh_database, "test")
    return fresh_database


@pytest.fixture
def empty_database(postgres_server: str) -> Iterator[str]:
    """A database with no tables at all, for this test alone."""
    with temporary_database(postgres_server, "satchel_empty") as url:
        yield url


@pytest.fixture
def own_database(postgres_server: str) -> Iterator[str]:
    """A migrated database for this test alone: its outbox holds only this test's jobs."""
    with temporary_database(postgres_server, "satchel_own") as url:
        migrate(url, "test")
        yield url


@pytest.fixture(scope="session")
def redis_url(server_dir: Path) -> Iterator[str]:
    """A Redis database of this test session: REDIS_URL's server (db 1+worker), or an embedded one."""
    if url := os.environ.get("REDIS_URL"):
        url = urlunsplit(urlsplit(url)._replace(path=f"/{1 + _worker_index()}"))
        redis.Redis.from_url(url).flushdb()
        yield url
        return
    server = EmbeddedRedis(server_dir / "redis", durable=False)
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def owned_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis server this test alone owns, so it may stop, pause or kill it."""
    server = EmbeddedRedis(tmp_path / "owned-redis", durable=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """RabbitMQ: AMQP_URL when set; otherwise the conventional local server, or skip if there is none."""
    url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        if "AMQP_URL" in os.environ:
            raise  # a broker we were told to use must be there
        pytest.skip(f"no RabbitMQ at {url} ({exc}); set AMQP_URL to run the amqp:// tests")
    return url


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """A local S3-compatible server over HTTP, in its own process."""
    server = MotoServer(port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def clamd(server_dir: Path) -> Iterator[clamd_support.Clamd]:
    """A real clamd that detects the test signature; CI must have it, elsewhere it may be missing."""
    clamd_support.require()
    server = clamd_support.Clamd(server_dir / "clamd", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(moto_server: MotoServer) -> str:
    return moto_server.create_bucket(f"satchel-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def secret_key() -> str:
    return secrets.token_urlsafe(40)


@pytest.fixture
def base_env(database_url: str, redis_url: str, secret_key: str, tmp_path: Path) -> dict[str, str]:
    """A complete, valid environment for a Satchel process, with file storage under tmp_path."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")}
    return {
        **keep,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "STORAGE_URL": f"file://{tmp_path / 'objects'}",
        "SECRET_KEY": secret_key,
        "RELEASE_ID": f"test-{uuid.uuid4().hex[:8]}",
        "PORT": str(free_port()),
        "WEB_CONCURRENCY": "2",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        "SATCHEL_SIGNUP": "open",  # as `satchel dev` runs; the sign-up policy's own tests set each value
    }


LIBRARY_LOGGERS = ("gunicorn.error", "gunicorn.access", "uvicorn", "uvicorn.error", "uvicorn.access", "celery")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put logging and structlog back as they were after a test that configures them as a process does."""
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    saved_libs = {name: logging.getLogger(name) for name in LIBRARY_LOGGERS}
    saved_lib_state = {name: (lg.handlers[:], lg.propagate, lg.disabled) for name, lg in saved_libs.items()}
    saved_structlog = structlog.get_config()
    yield
    logging.captureWarnings(False)
    root.handlers[:], level = saved_root
    root.setLevel(level)
    for name, lg in saved_libs.items():
        lg.handlers[:], lg.propagate, lg.disabled = saved_lib_state[name]
    structlog.configure(**saved_structlog)


# --- Satchel's app in this process, on the real services above ---------------------------------------


@pytest.fixture
def app_settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        STORAGE_URL=f"file://{tmp_path / 'objects'}",
        SECRET_KEY=secrets.token_urlsafe(40),
        RELEASE_ID="test",
        SATCHEL_SIGNUP="open",  # as `satchel dev` runs; the sign-up policy's own tests set each value
    )


@pytest.fixture
def make_app(app_settings: Settings) -> AppFactory:
    """An app whose settings differ from the default test ones by ``overrides`` (environment names)."""

    @contextmanager
    def running(**overrides: str) -> Iterator[App]:
        settings = app_settings.model_copy(update=load_settings(**{
            **{f.alias: getattr(app_settings, name) for name, f in Settings.model_fields.items() if f.alias},
            "SECRET_KEY": app_settings.secret_key.get_secret_value(),
            **overrides,
        }).model_dump())  # fmt: skip
        with TestClient(create_app(settings), base_url="http://satchel.test") as client:
            yield App(client)

    return running


@pytest.fixture
def app(make_app: AppFactory) -> Iterator[App]:
    with make_app() as running:
        yield running
