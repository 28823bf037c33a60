"""The owner's pages for upload requests: list, new, one request and what came in, close."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from satchel.domain.clock import utcnow
from satchel.domain.errors import DomainError, InvalidInput
from satchel.domain.files import parse_size
from satchel.web import qr
from satchel.web.pages import PAGE_SIZE, PageNumber, expiry_choices
from satchel.web.params import RowId
from satchel.web.security import CsrfChecked, PageUser, PictureUser, ServicesDep
from satchel.web.templating import flash, render
from satchel.web.urls import base_url

router = APIRouter(prefix="/requests", include_in_schema=False)
SIZE_UNITS = ("MiB", "GiB")  # what the form offers, in the one unit system the pages show sizes in


def _whole_number(text: str, what: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise InvalidInput(f"The {what} must be a whole number.")
    return int(text)


def _size_limit(amount: str, unit: str) -> int | None:
    if not amount.strip():
        return None
    if unit not in SIZE_UNITS:
        raise InvalidInput("Choose MiB or GiB for the size limit.")
    return parse_size(f"{amount} {unit}")


@router.get("")
async def requests_page(request: Request, user: PageUser, services: ServicesDep, page: PageNumber = 1) -> Response:
    found, total = await services.requests.list_owned(user, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))
    return await render(
        request,
        "requests.html",
        requests=found,
        total=total,
        page=page,
        pages=pages,
        base=base_url(request),
        now=utcnow(),
    )


@router.get("/new")
async def new_request_page(request: Request, user: PageUser, services: ServicesDep) -> Response:
    default = services.settings.share_default_days * 24
    return await render(
        request,
        "request_new.html",
        expiry_choices=expiry_choices(services),
        expires_in_hours=default,
        size_units=SIZE_UNITS,
    )


@router.post("", dependencies=[CsrfChecked])
async def create_request(
    request: Request,
    user: PageUser,
    services: ServicesDep,
    expires_in_hours: Annotated[int | None, Form()] = None,
    max_files: Annotated[str, Form()] = "",
    max_size: Annotated[str, Form()] = "",
    max_size_unit: Annotated[str, Form()] = "GiB",
    password: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    try:
        limits = _whole_number(max_files, "number of files"), _size_limit(max_size, max_size_unit)
        terms = services.requests.terms(expires_in_hours, *limits, note)
        created = await services.requests.create(user, terms, password=password or None)
    except DomainError as exc:
        return await render(
            request,
            "request_new.html",
            exc.status,
            expiry_choices=expiry_choices(services),
            error=exc.message,
            expires_in_hours=expires_in_hours,
            max_files=max_files,
            max_size=max_size,
            max_size_unit=max_size_unit,
            size_units=SIZE_UNITS,
            note=note,
        )
    await flash(request, "Your upload link is ready. Send it to whoever should send you files.")
    return RedirectResponse(f"/requests/{created.id}", status_code=303)


@router.get("/{request_id}")
async def request_page(request: Request, request_id: RowId, user: PageUser, services: ServicesDep) -> Response:
    view = await services.requests.owned(user, request_id)
    return await render(request, "request.html", view=view, base=base_url(request), now=utcnow())


@router.get("/{request_id}/qr.svg")
async def request_qr(request: Request, request_id: RowId, user: PictureUser, services: ServicesDep) -> Response:
    return qr.request_qr(base_url(request), await services.requests.open_link(user, request_id))


@router.post("/{request_id}/revoke", dependencies=[CsrfChecked])
async def revoke_request(request: Request, request_id: RowId, user: PageUser, services: ServicesDep) -> Response:
    await services.requests.revoke(user, request_id)
    await flash(request, "The upload link is closed; nobody can upload through it any more.")
    return RedirectResponse(f"/requests/{request_id}", status_code=303)
