"""/admin/users: every account, searched and paged; invitations waiting; adding someone by invitation or with a
password; one account's page, where it is disabled or enabled, made administrator or not, given a quota."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from satchel.domain.accounts import User
from satchel.domain.errors import DomainError
from satchel.domain.files import SIZE_UNITS, parse_size
from satchel.domain.invitations import invitation_path
from satchel.services.invitations import NewInvitation
from satchel.services.users import UserChange
from satchel.web.admin.listing import PAGE_SIZE, back_to, kept_query, offset_of, pages_of
from satchel.web.pages import PageNumber
from satchel.web.params import RowId
from satchel.web.security import CsrfChecked, PageAdmin, ServicesDep, SessionDep, client_of
from satchel.web.templating import flash, render
from satchel.web.urls import base_url

router = APIRouter(include_in_schema=False)
QUOTA_UNITS = ("MiB", "GiB", "TiB")  # what the quota form offers; SIZE_UNITS has them all
WAITING = 50  # invitations waiting shown on the Users page; the API pages through every one


def quota_fields(size: int) -> tuple[str, str]:
    """A quota as the form shows it: an amount in the largest unit it reaches (``50``, ``GiB``)."""
    unit = next((u for u in reversed(QUOTA_UNITS) if size >= SIZE_UNITS[u]), QUOTA_UNITS[0])
    return f"{size / SIZE_UNITS[unit]:.2f}".rstrip("0").rstrip("."), unit


def typed_quota(amount: str, unit: str) -> int | None:
    """The quota a form asked for, in bytes; None when it left the amount empty."""
    return parse_size(f"{amount} {unit}") if amount.strip() else None


@router.get("/users")
async def users_page(
    request: Request, admin: PageAdmin, services: ServicesDep, session: SessionDep, q: str = "", page: PageNumber = 1
) -> Response:
    found, total = await services.administration.users(admin, search=q, limit=PAGE_SIZE, offset=offset_of(page))
    waiting, waiting_total = await services.administration.invitations(admin, status="pending", limit=WAITING)
    invited = await session.get("invited")
    if invited:
        await session.set("invited", None)  # the link is shown once, after the redirect
    return await render(
        request,
        "admin/users.html",
        admin_tab="users",
        users=found,
        total=total,
        page=page,
        pages=pages_of(total),
        q=q,
        base_query=kept_query(q=q),
        waiting=waiting,
        waiting_total=waiting_total,
        invited=invited,
        terms=services.administration.signup_terms(admin),
    )


@router.get("/users/new")
async def new_user_page(request: Request, admin: PageAdmin, services: ServicesDep) -> Response:
    return await _new_user(request, admin, services, 200)


async def _new_user(request: Request, admin: User, services: ServicesDep, status: int, **form: object) -> Response:
    terms = services.administration.signup_terms(admin)
    amount, unit = quota_fields(terms.default_quota_bytes)
    return await render(
        request,
        "admin/user_new.html",
        status,
        admin_tab="users",
        units=QUOTA_UNITS,
        terms=terms,
        default_amount=amount,
        quota_unit=form.pop("quota_unit", unit),
        **form,
    )


@router.post("/users", dependencies=[CsrfChecked])
async def create_user(
    request: Request,
    admin: PageAdmin,
    services: ServicesDep,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    is_admin: Annotated[bool, Form()] = False,
    quota: Annotated[str, Form()] = "",
    quota_unit: Annotated[str, Form()] = "GiB",
) -> Response:
    try:
        created = await services.administration.create_user(
            admin,
            email,
            password,
            is_admin=is_admin,
            quota_bytes=typed_quota(quota, quota_unit),
            client=client_of(request),
        )
    except DomainError as exc:
        fields = {"email": email, "is_admin": is_admin, "quota": quota, "quota_unit": quota_unit}
        return await _new_user(request, admin, services, exc.status, create_error=exc.message, create=fields)
    await flash(request, f"Created the account {created.email}. Pass its password on to them safely.")
    return back_to(f"/admin/users/{created.id}")


@router.post("/invitations", dependencies=[CsrfChecked])
async def invite(
    request: Request,
    admin: PageAdmin,
    services: ServicesDep,
    session: SessionDep,
    email: Annotated[str, Form()],
    is_admin: Annotated[bool, Form()] = False,
) -> Response:
    try:
        new = await services.administration.invite(admin, email, is_admin=is_admin, client=client_of(request))
    except DomainError as exc:
        fields = {"email": email, "is_admin": is_admin}
        return await _new_user(request, admin, services, exc.status, invite_error=exc.message, invite=fields)
    await _show_link(request, session, new, f"Invited {new.invitation.email}: the link is on its way by email.")
    return back_to("/admin/users")


@router.post("/invitations/{invitation_id}/resend", dependencies=[CsrfChecked])
async def resend(
    request: Request, admin: PageAdmin, services: ServicesDep, session: SessionDep, invitation_id: RowId
) -> Response:
    try:
        new = await services.administration.resend_invitation(admin, invitation_id, client=client_of(request))
    except DomainError as exc:
        await flash(request, exc.message, "error")
        return back_to("/admin/users")
    message = f"Sent {new.invitation.email} a new link; the one sent before no longer works."
    await _show_link(request, session, new, message)
    return back_to("/admin/users")


async def _show_link(request: Request, session: SessionDep, new: NewInvitation, message: str) -> None:
    """The link, shown once on the next page, for an administrator to pass on if mail does not reach them."""
    link = base_url(request) + invitation_path(new.token)
    await session.set("invited", {"email": new.invitation.email, "link": link})
    await flash(request, message)


@router.post("/invitations/{invitation_id}/revoke", dependencies=[CsrfChecked])
async def revoke(request: Request, admin: PageAdmin, services: ServicesDep, invitation_id: RowId) -> Response:
    try:
        withdrawn = await services.administration.revoke_invitation(admin, invitation_id, client=client_of(request))
        await flash(request, f"Withdrew the invitation to {withdrawn.email}: its link no longer works.")
    except DomainError as exc:
        await flash(request, exc.message, "error")
    return back_to("/admin/users")


@router.get("/users/{user_id}")
async def user_page(request: Request, admin: PageAdmin, services: ServicesDep, user_id: RowId) -> Response:
    account = await services.administration.user(admin, user_id)
    return await _user(request, admin, account, 200)


async def _user(request: Request, admin: User, account: User, status: int, **form: object) -> Response:
    amount, unit = quota_fields(account.quota_bytes)
    form.setdefault("quota", amount)
    form.setdefault("quota_unit", unit)
    return await render(
        request,
        "admin/user.html",
        status,
        admin_tab="users",
        account=account,
        itself=account.id == admin.id,
        units=QUOTA_UNITS,
        **form,
    )


@router.post("/users/{user_id}/quota", dependencies=[CsrfChecked])
async def set_quota(
    request: Request,
    admin: PageAdmin,
    services: ServicesDep,
    user_id: RowId,
    quota: Annotated[str, Form()],
    quota_unit: Annotated[str, Form()] = "GiB",
) -> Response:
    try:
        size = typed_quota(quota, quota_unit) or 0
        changed = await services.administration.change_user(
            admin, user_id, UserChange(quota_bytes=size), client=client_of(request)
        )
    except DomainError as exc:
        account = await services.administration.user(admin, user_id)
        return await _user(request, admin, account, exc.status, quota=quota, quota_unit=quota_unit, error=exc.message)
    amount, unit = quota_fields(changed.quota_bytes)
    await flash(request, f"{changed.email} may now store {amount} {unit}.")
    return back_to(f"/admin/users/{user_id}")


# One button each: the change it makes, and what the next page says once it is made.
Action = Literal["disable", "enable", "grant-admin", "revoke-admin"]
ACTIONS: dict[str, tuple[UserChange, str]] = {
    "disable": (UserChange(disabled=True), "Disabled {}: their sessions ended and their API tokens are revoked."),
    "enable": (UserChange(disabled=False), "Enabled {} again. They sign in anew; old tokens stay revoked."),
    "grant-admin": (UserChange(is_admin=True), "{} is now an administrator."),
    "revoke-admin": (UserChange(is_admin=False), "{} is no longer an administrator."),
}


@router.post("/users/{user_id}/{action}", dependencies=[CsrfChecked])
async def change_user(
    request: Request, admin: PageAdmin, services: ServicesDep, user_id: RowId, action: Action
) -> Response:
    change, done = ACTIONS[action]
    try:
        changed = await services.administration.change_user(admin, user_id, change, client=client_of(request))
        await flash(request, done.format(changed.email))
    except DomainError as exc:
        await flash(request, exc.message, "error")
    return back_to(f"/admin/users/{user_id}")


assert set(ACTIONS) == set(get_args(Action)), "every action has its change"
