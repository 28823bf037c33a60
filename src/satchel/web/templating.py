"""Server-rendered pages: one Jinja2 environment, autoescaped, with Satchel's filters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from satchel import __version__
from satchel.domain.clock import utcnow
from satchel.domain.files import human_size
from satchel.web.sessions import session_of

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.auto_reload = False  # compiled once per process: templates change only with a new release


def filesize(size: int | None) -> str:
    return "—" if size is None else human_size(size)


def when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def relative(moment: datetime | None) -> str:
    """'in 3 days', '2 hours ago': how long until or since a moment, roughly."""
    if moment is None:
        return "—"
    seconds = (moment - utcnow()).total_seconds()
    future, seconds = seconds >= 0, abs(seconds)
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            count = int(seconds // length)
            text = f"{count} {unit}{'s' if count != 1 else ''}"
            return f"in {text}" if future else f"{text} ago"
    return "in under a minute" if future else "just now"


templates.env.filters.update(filesize=filesize, when=when, relative=relative)
templates.env.globals.update(version=__version__)


async def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    session = session_of(request)
    context.setdefault("user", getattr(request.state, "user", None))
    context["signup"] = request.app.state.services.settings.signup  # open, invite or closed: what pages offer
    context["csrf_token"] = await session.csrf_token()
    context["flash"] = await session.get("flash")
    if context["flash"]:
        await session.set("flash", None)
    response: HTMLResponse = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


async def flash(request: Request, message: str, kind: str = "ok") -> None:
    """A one-time message shown on the next page."""
    await session_of(request).set("flash", {"message": message, "kind": kind})
