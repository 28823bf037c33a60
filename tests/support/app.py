"""Satchel's ASGI app in-process, on real PostgreSQL, Redis and storage, with helpers to act as users."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from starlette.testclient import TestClient

from satchel.bootstrap import Services

T = TypeVar("T")
PASSWORD = "correct horse battery staple"


@dataclass
class Account:
    email: str
    token: str
    id: int

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class App:
    """A TestClient plus shortcuts: create accounts, upload, share, sign in a browser session."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    @property
    def services(self) -> Services:
        services: Services = self.client.app.state.services  # type: ignore[attr-defined]
        return services

    def call(self, work: Callable[..., Awaitable[T]], *args: Any) -> T:
        assert self.client.portal is not None
        return self.client.portal.call(work, *args)

    def account(self, *, quota: int | None = None) -> Account:
        email = f"user-{uuid.uuid4().hex[:10]}@example.test"
        user = self.call(self.services.accounts.create_user, email, PASSWORD)
        if quota is not None:
            from satchel.adapters.db.schema import users

            async def set_quota() -> None:
                async with self.services.database.engine.begin() as conn:
                    await conn.execute(users.update().where(users.c.id == user.id).values(quota_bytes=quota))

            self.call(set_quota)
        new = self.call(self.services.accounts.create_token, user, "tests")
        return Account(email=email, token=new.secret, id=user.id)

    def upload(self, who: Account, name: str, data: bytes, **params: Any) -> dict[str, Any]:
        response = self.client.put(f"/api/files/{name}", content=data, headers=who.auth, params=params)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def share(self, who: Account, file_ids: list[str], **terms: Any) -> dict[str, Any]:
        response = self.client.post("/api/shares", json={"file_ids": file_ids, **terms}, headers=who.auth)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def csrf(self, path: str = "/login") -> str:
        page = self.client.get(path, headers={"Accept": "text/html"})
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text) or re.search(
            r'name="csrf-token" content="([^"]+)"', page.text
        )
        assert match, page.text[:500]
        return match.group(1)

    def sign_in(self, who: Account) -> httpx.Response:
        token = self.csrf()
        return self.client.post(
            "/login", data={"email": who.email, "password": PASSWORD, "csrf_token": token}, follow_redirects=False
        )


AppFactory = Callable[..., AbstractContextManager[App]]
