"""The browser interface: sign-up and sign-in, files, shares, account. Server-rendered, CSRF on every form."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from satchel.domain.accounts import User
from satchel.domain.clock import utcnow
from satchel.domain.errors import DomainError, InvalidInput, NotFound
from satchel.domain.files import StoredFile, is_file_id
from satchel.ports.persistence import FILE_SORTS
from satchel.services.files import SNIPPET_MAX_BYTES
from satchel.services.sharing import MAX_FILES_PER_SHARE
from satchel.web import qr
from satchel.web.params import BIGINT, FileId, RowId
from satchel.web.previews import on_page
from satchel.web.security import (
    CsrfChecked,
    OptionalUser,
    PageUser,
    PictureUser,
    ServicesDep,
    SessionDep,
    client_of,
    start_session,
)
from satchel.web.templating import flash, render
from satchel.web.urls import base_url

router = APIRouter(include_in_schema=False)
EXPIRY_CHOICES = [("1 hour", 1), ("1 day", 24), ("3 days", 72), ("7 days", 168), ("30 days", 720)]
PAGE_SIZE = 50
PageNumber = Annotated[int, Query(ge=1, le=BIGINT // PAGE_SIZE)]  # its offset must fit the database too


def safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect would make phishing links look like ours.
    return target if target and target.startswith("/") and not target.startswith("//") else "/files"


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("/")
async def home(request: Request, user: OptionalUser) -> Response:
    if user:
        return _redirect("/files")
    return await render(request, "home.html")


@router.get("/signup")
async def signup_form(request: Request) -> Response:
    return await render(request, "signup.html")


@router.post("/signup", dependencies=[CsrfChecked])
async def signup(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    try:
        user = await services.accounts.sign_up(email, password, client=client_of(request))
    except DomainError as exc:
        return await render(request, "signup.html", exc.status, error=exc.message, email=email)
    await start_session(session, user)
    await flash(request, "Welcome to Satchel. Drop files here to upload them.")
    return _redirect("/files")


def _provider(services: ServicesDep) -> str | None:
    """The identity provider's name, for its button, when one is set up."""
    return services.provider_sign_in.provider_name if services.provider_sign_in else None


@router.get("/login")
async def login_form(request: Request, services: ServicesDep, next: str | None = None) -> Response:
    return await render(request, "login.html", next=safe_next(next), provider=_provider(services))


@router.post("/login", dependencies=[CsrfChecked])
async def login(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str | None, Form()] = None,
) -> Response:
    try:
        user = await services.accounts.sign_in(email, password, client=client_of(request))
    except DomainError as exc:
        return await render(
            request,
            "login.html",
            exc.status,
            error=exc.message,
            email=email,
            next=safe_next(next),
            provider=_provider(services),
        )
    await start_session(session, user)
    return _redirect(safe_next(next))


@router.post("/logout", dependencies=[CsrfChecked])
async def logout(session: SessionDep) -> Response:
    await session.rotate()
    return _redirect("/")


@router.get("/files")
async def files_page(
    request: Request,
    user: PageUser,
    services: ServicesDep,
    sort: str = "-created",
    page: PageNumber = 1,
) -> Response:
    return await _files_page(request, user, services, sort, page)


async def _files_page(
    request: Request, user: User, services: ServicesDep, sort: str, page: int, status: int = 200, **more: Any
) -> Response:
    if sort not in FILE_SORTS:
        sort = "-created"
    files, total = await services.files.list_owned(user, sort=sort, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))
    return await render(
        request,
        "files.html",
        status,
        files=files,
        total=total,
        page=page,
        pages=pages,
        sort=sort,
        max_upload=services.settings.max_upload_bytes,
        upload_chunk=services.settings.upload_chunk_bytes,
        snippet_max=SNIPPET_MAX_BYTES,
        **more,
    )


@router.post("/files/snippets", dependencies=[CsrfChecked])
async def paste_snippet(
    request: Request,
    user: PageUser,
    services: ServicesDep,
    text: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
) -> Response:
    # A form sends every line break as CRLF (HTML's rule): the text as it was pasted has the browser's own.
    pasted = text.replace("\r\n", "\n").encode("utf-8", errors="replace")
    try:
        file = await services.files.paste(user, pasted, name=name or None, client=client_of(request))
    except DomainError as exc:
        return await _files_page(
            request,
            user,
            services,
            "-created",
            1,
            exc.status,
            snippet_error=exc.message,
            snippet=text,
            snippet_name=name,
        )
    await flash(request, f"Saved {file.name}. Share it like any file.")
    return _redirect(f"/files/{file.id}")


@router.get("/files/{file_id}")
async def file_page(request: Request, user: PageUser, services: ServicesDep, file_id: FileId) -> Response:
    details = await services.files.details(user, file_id)
    views = await services.sharing.with_files(details.shares)
    shown = await services.previews.on_owner_page(user, details.file)
    return await render(
        request,
        "file.html",
        file=details.file,
        shares=views,
        base=base_url(request),
        now=utcnow(),
        preview=on_page(services, shown),
    )


@router.post("/files/{file_id}/rename", dependencies=[CsrfChecked])
async def rename_file(
    request: Request, user: PageUser, services: ServicesDep, file_id: FileId, name: Annotated[str, Form()]
) -> Response:
    try:
        await services.files.rename(user, file_id, name)
    except InvalidInput as exc:
        await flash(request, exc.message, "error")
    return _redirect(f"/files/{file_id}")


@router.post("/files/{file_id}/delete", dependencies=[CsrfChecked])
async def delete_file(request: Request, user: PageUser, services: ServicesDep, file_id: FileId) -> Response:
    file = await services.files.delete(user, file_id, client=client_of(request))
    await flash(request, f"Deleted {file.name}.")
    return _redirect("/files")


@router.get("/shares")
async def shares_page(request: Request, user: PageUser, services: ServicesDep, page: PageNumber = 1) -> Response:
    views, total = await services.sharing.list_owned(user, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))
    return await render(
        request,
        "shares.html",
        shares=views,
        total=total,
        page=page,
        pages=pages,
        base=base_url(request),
        now=utcnow(),
    )


@router.get("/shares/new")
async def new_share_page(
    request: Request, user: PageUser, services: ServicesDep, file: Annotated[list[str] | None, Query()] = None
) -> Response:
    chosen = await _chosen(user, services, file or [])
    if not chosen:
        await flash(request, "Choose one or more files to share first.", "error")
        return _redirect("/files")
    default = services.settings.share_default_days * 24
    return await render(
        request, "share_new.html", files=chosen, expiry_choices=expiry_choices(services), expires_in_hours=default
    )


async def _chosen(user: User, services: ServicesDep, file_ids: list[str]) -> list[StoredFile]:
    """The owner's files a form or link names; one that cannot be a file id is "no such file", unqueried."""
    if not all(is_file_id(i) for i in file_ids):
        raise NotFound("No such file.")
    return [await services.files.owned(user, file_id) for file_id in file_ids[:MAX_FILES_PER_SHARE]]


def _download_limit(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()):
        raise InvalidInput("The download limit must be a whole number.")
    return int(text) if len(text) <= 18 else BIGINT  # beyond any limit, and refused with the terms


def _recipients(text: str) -> list[str]:
    return [r.strip() for r in text.replace(";", ",").replace("\n", ",").split(",") if r.strip()]


def expiry_choices(services: ServicesDep) -> list[tuple[str, int]]:
    max_hours = services.settings.share_max_days * 24
    default_days = services.settings.share_default_days
    choices = dict(EXPIRY_CHOICES) | {f"{default_days} days" if default_days > 1 else "1 day": default_days * 24}
    return sorted(((label, hours) for label, hours in choices.items() if hours <= max_hours), key=lambda c: c[1])


@router.post("/shares", dependencies=[CsrfChecked])
async def create_share(
    request: Request,
    user: PageUser,
    services: ServicesDep,
    file_id: Annotated[list[str], Form()],
    expires_in_hours: Annotated[int | None, Form()] = None,
    max_downloads: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    title: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    notify: Annotated[str, Form()] = "",
    delete_files_when_done: Annotated[bool, Form()] = False,
    allow_previews: Annotated[bool, Form()] = False,
) -> Response:
    try:
        terms = services.sharing.terms(
            expires_in_hours,
            _download_limit(max_downloads),
            note,
            delete_files_when_done=delete_files_when_done,
            notify=_recipients(notify),
            allow_previews=allow_previews,
            title=title,
        )
        view = await services.sharing.create(user, file_id, terms, password=password or None, client=client_of(request))
    except DomainError as exc:
        chosen = await _chosen(user, services, file_id)
        return await render(
            request,
            "share_new.html",
            422,
            files=chosen,
            expiry_choices=expiry_choices(services),
            error=exc.message,
            title=title,
            note=note,
            max_downloads=max_downloads,
            expires_in_hours=expires_in_hours,
            notify=notify,
            allow_previews=allow_previews,
        )
    await flash(request, "Your link is ready. Copy it and send it to whoever needs the files.")
    return _redirect(f"/shares/{view.share.id}")


@router.get("/shares/{share_id}")
async def share_page(request: Request, share_id: RowId, user: PageUser, services: ServicesDep) -> Response:
    view = await services.sharing.owned(user, share_id)
    history_until = view.share.forgotten_at(services.settings.share_history_days)
    return await render(
        request, "share.html", view=view, base=base_url(request), now=utcnow(), history_until=history_until
    )


@router.get("/shares/{share_id}/qr.svg")
async def share_qr(request: Request, share_id: RowId, user: PictureUser, services: ServicesDep) -> Response:
    return qr.share_qr(base_url(request), await services.sharing.open_link(user, share_id))


@router.post("/shares/{share_id}/revoke", dependencies=[CsrfChecked])
async def revoke_share(request: Request, share_id: RowId, user: PageUser, services: ServicesDep) -> Response:
    await services.sharing.revoke(user, share_id, client=client_of(request))
    await flash(request, "The link is revoked; it no longer works for anyone.")
    return _redirect(f"/shares/{share_id}")


@router.get("/account")
async def account_page(request: Request, user: PageUser, services: ServicesDep, session: SessionDep) -> Response:
    new_token = await session.get("new_token")
    if new_token:
        await session.set("new_token", None)
    tokens = await services.accounts.tokens(user)
    return await render(request, "account.html", tokens=tokens, new_token=new_token, base=base_url(request))


@router.post("/account/password", dependencies=[CsrfChecked])
async def change_password(
    request: Request,
    user: PageUser,
    services: ServicesDep,
    session: SessionDep,
    current_password: Annotated[str, Form()],
    new_password: Annotated[str, Form()],
) -> Response:
    try:
        changed = await services.accounts.change_password(user, current_password, new_password)
    except DomainError as exc:
        tokens = await services.accounts.tokens(user)
        return await render(request, "account.html", exc.status, tokens=tokens, password_error=exc.message)
    await start_session(session, changed)  # this browser stays signed in; every other session has ended
    await flash(request, "Your password is changed. Other sessions are signed out and your API tokens are revoked.")
    return _redirect("/account")


@router.post("/account/tokens", dependencies=[CsrfChecked])
async def create_token(
    request: Request, user: PageUser, services: ServicesDep, session: SessionDep, name: Annotated[str, Form()]
) -> Response:
    try:
        new = await services.accounts.create_token(user, name)
    except DomainError as exc:
        tokens = await services.accounts.tokens(user)
        return await render(request, "account.html", exc.status, tokens=tokens, token_error=exc.message)
    # Shown once, after a redirect: reloading the page must not create a second token.
    await session.set("new_token", new.secret)
    return _redirect("/account")


@router.post("/account/tokens/{token_id}/revoke", dependencies=[CsrfChecked])
async def revoke_token(request: Request, token_id: RowId, user: PageUser, services: ServicesDep) -> Response:
    await services.accounts.revoke_token(user, token_id)
    await flash(request, "The token is revoked.")
    return _redirect("/account")
