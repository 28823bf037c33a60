"""The page of a one-time link that ends in a password form: an invitation, a password reset.

Both answer alike. A link that no longer works says why on its page. A form a rule refused is shown again
with the reason, unless the link itself stopped working meanwhile: then that is what the page says, not what
was wrong with the form. A link used, the browser is signed in and sent to its files with a word of what
happened. Nothing needs a session until then: the form's CSRF token is the visitor's signed one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import RedirectResponse, Response

from satchel.domain.accounts import User
from satchel.domain.errors import DomainError
from satchel.web.security import start_session
from satchel.web.sessions import Session
from satchel.web.templating import flash, render

Token = Annotated[str, Path(max_length=100)]
Opened = Callable[[str], Awaitable[Any]]  # what a token's link opens, or a DomainError saying why it does not


@dataclass(frozen=True)
class LinkForm:
    template: str
    name: str  # what the template calls what the link opens
    done: str  # said on the files page once the link is used

    async def page(self, request: Request, token: str, opened: Opened) -> Response:
        try:
            found = await opened(token)
        except DomainError as exc:
            return await render(request, self.template, exc.status, problem=exc.message)
        return await render(request, self.template, **{self.name: found}, token=token)

    async def submit(
        self, request: Request, session: Session, token: str, use: Awaitable[User], opened: Opened
    ) -> Response:
        """``use`` is the link's use case on the form's password; ``opened`` asked again only if it refused."""
        try:
            user = await use
        except DomainError as exc:
            try:
                found = await opened(token)
            except DomainError as gone:
                return await render(request, self.template, gone.status, problem=gone.message)
            return await render(
                request, self.template, exc.status, **{self.name: found}, token=token, error=exc.message
            )
        await start_session(session, user)
        await flash(request, self.done)
        return RedirectResponse("/files", status_code=303)
