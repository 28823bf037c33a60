from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from satchel.settings import Settings, load_settings
from satchel.web.app import create_app

from support.app import App, AppFactory


@pytest.fixture
def app_settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        STORAGE_URL=f"file://{tmp_path / 'objects'}",
        SECRET_KEY=secrets.token_urlsafe(40),
        RELEASE_ID="test",
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
