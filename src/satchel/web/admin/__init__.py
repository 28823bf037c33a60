"""The admin console, ``/admin/…``: pages for accounts with ``is_admin``, one module per area.

Every route takes ``PageAdmin`` (403 for anyone else) and calls a use case that checks again.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

router = APIRouter(prefix="/admin", include_in_schema=False)


@router.get("")
async def console() -> RedirectResponse:
    return RedirectResponse("/admin/users", status_code=303)


# The areas, each its own module (imported here, after ``router`` exists, so each may use the package).
from satchel.web.admin import audit, content, jobs, users  # noqa: E402

for _area in (users, content, audit, jobs):
    router.include_router(_area.router)
