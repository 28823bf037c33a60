"""/api/admin/users, /api/admin/invitations and /api/admin/signup: accounts, invitations and the sign-up policy,
for administrators.

The same use cases as the /admin/users pages (services/administration.py); each checks ``is_admin`` again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BaseModel, BeforeValidator, Field, Strict

from satchel.domain.accounts import MAX_PASSWORD, MAX_QUOTA, MIN_PASSWORD, SignupMode, User
from satchel.domain.clock import utcnow
from satchel.domain.invitations import Invitation, InvitationStatus, invitation_path
from satchel.services.administration import MAX_PAGE
from satchel.services.invitations import NewInvitation
from satchel.services.users import UserChange
from satchel.web.api.schemas import Email, JsonIn, Page, integer
from satchel.web.openapi import SIGNED_IN, problems
from satchel.web.params import BIGINT, Offset
from satchel.web.security import ApiAdmin, ServicesDep, client_of
from satchel.web.urls import base_url

router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    dependencies=SIGNED_IN,
    responses=problems(401, (403, "Not an administrator, or a missing `X-CSRF-Token`"), 503),
)
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
UserId = Annotated[int, Path(ge=1, le=BIGINT, description="an account's id")]
InvitationId = Annotated[int, Path(ge=1, le=BIGINT, description="an invitation's id")]
Quota = Annotated[
    int, Field(ge=1, le=MAX_QUOTA, description="bytes the account may store"), Strict(False), BeforeValidator(integer)
]


class AdminUserOut(BaseModel):
    id: int
    email: str
    is_admin: bool
    disabled: bool
    quota_bytes: int
    used_bytes: int
    created_at: datetime
    last_signed_in_at: datetime | None = Field(description="its last sign-in with a password; null if never")

    @classmethod
    def of(cls, user: User) -> AdminUserOut:
        return cls(**{name: getattr(user, name) for name in cls.model_fields})


class AdminUserIn(JsonIn):
    email: Email
    password: str = Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)
    is_admin: bool = False
    quota_bytes: Quota | None = Field(None, description="bytes it may store; none: SATCHEL_DEFAULT_QUOTA_BYTES")


class AdminUserChange(JsonIn):
    disabled: bool | None = Field(
        None, description="true ends its sessions and revokes its API tokens; never your own account"
    )
    is_admin: bool | None = Field(None, description="false is never for your own account")
    quota_bytes: Quota | None = Field(None, description="never below what it uses")


class InvitationOut(BaseModel):
    id: int
    email: str
    is_admin: bool = Field(description="the account opens as an administrator's")
    status: InvitationStatus = Field(description="pending, accepted, revoked or expired")
    invited_by_email: str | None = Field(description="the administrator who invited; null: an operator")
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, invitation: Invitation, now: datetime) -> InvitationOut:
        fields = {name: getattr(invitation, name) for name in cls.model_fields if name != "status"}
        return cls(**fields, status=invitation.status(now))


class NewInvitationOut(InvitationOut):
    url: str = Field(description="the link, shown this once (it also went out by email); it works once")

    @classmethod
    def made(cls, new: NewInvitation, request: Request) -> NewInvitationOut:
        url = base_url(request) + invitation_path(new.token)
        return cls(**InvitationOut.of(new.invitation, utcnow()).model_dump(), url=url)


class InvitationIn(JsonIn):
    email: Email
    is_admin: bool = False


class SignupOut(BaseModel):
    policy: SignupMode = Field(
        description="SATCHEL_SIGNUP: `open` (anyone signs up), `invite` (only an invitation link opens an "
        "account) or `closed` (administrators create accounts); configuration, not changed through the API"
    )
    invitation_days: int = Field(description="SATCHEL_INVITATION_DAYS: how long an invitation link works")
    default_quota_bytes: int = Field(description="SATCHEL_DEFAULT_QUOTA_BYTES: an invited account's quota")


@router.get("/users", summary="Every account, newest first, searched by email and paged", responses=problems(422))
async def list_users(
    admin: ApiAdmin,
    services: ServicesDep,
    q: Annotated[str | None, Query(max_length=254, description="part of the account's email, in any case")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[AdminUserOut]:
    found, total = await services.administration.users(admin, search=q, limit=limit, offset=offset)
    return Page(items=[AdminUserOut.of(u) for u in found], total=total, limit=limit, offset=offset)


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    summary="Create an account with a password, whatever the sign-up policy (recorded as admin.user_created)",
    responses=problems((409, "An account with this email already exists"), 422),
)
async def create_user(request: Request, body: AdminUserIn, admin: ApiAdmin, services: ServicesDep) -> AdminUserOut:
    user = await services.administration.create_user(
        admin,
        body.email,
        body.password,
        is_admin=body.is_admin,
        quota_bytes=body.quota_bytes,
        client=client_of(request),
    )
    return AdminUserOut.of(user)


@router.get("/users/{user_id}", summary="One account", responses=problems((404, "No such account"), 422))
async def get_user(user_id: UserId, admin: ApiAdmin, services: ServicesDep) -> AdminUserOut:
    return AdminUserOut.of(await services.administration.user(admin, user_id))


@router.patch(
    "/users/{user_id}",
    summary="Disable or enable an account, make it an administrator or not, set its quota",
    description="Each field given and different is one change, recorded as its own event (`admin.user_disabled`, "
    "`admin.user_enabled`, `admin.admin_granted`, `admin.admin_revoked`, `admin.quota_changed`), all in one "
    "transaction: every change, or none.",
    responses=problems(
        (404, "No such account"),
        (409, "That would disable or demote your own account, or set a quota below what it uses"),
        422,
    ),
)
async def change_user(
    request: Request, user_id: UserId, body: AdminUserChange, admin: ApiAdmin, services: ServicesDep
) -> AdminUserOut:
    change = UserChange(disabled=body.disabled, is_admin=body.is_admin, quota_bytes=body.quota_bytes)
    return AdminUserOut.of(await services.administration.change_user(admin, user_id, change, client=client_of(request)))


@router.get("/invitations", summary="Invitations, newest first, by state, paged", responses=problems(422))
async def list_invitations(
    admin: ApiAdmin,
    services: ServicesDep,
    status: InvitationStatus | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[InvitationOut]:
    found, total = await services.administration.invitations(admin, status=status, limit=limit, offset=offset)
    now = utcnow()
    return Page(items=[InvitationOut.of(i, now) for i in found], total=total, limit=limit, offset=offset)


@router.post(
    "/invitations",
    status_code=status.HTTP_201_CREATED,
    summary="Invite an address by email to open an account (recorded as admin.user_invited)",
    responses=problems(
        (409, "The address has an account or an invitation waiting, or sign-up is closed (`SATCHEL_SIGNUP`)"),
        422,
    ),
)
async def invite(request: Request, body: InvitationIn, admin: ApiAdmin, services: ServicesDep) -> NewInvitationOut:
    new = await services.administration.invite(admin, body.email, is_admin=body.is_admin, client=client_of(request))
    return NewInvitationOut.made(new, request)


@router.post(
    "/invitations/{invitation_id}/resend",
    summary="Send an invitation again with a new link; the old one stops working (admin.invitation_resent)",
    responses=problems(
        (404, "No such invitation"),
        (409, "It was accepted or withdrawn, the address has an account, or sign-up is closed"),
        422,
    ),
)
async def resend_invitation(
    request: Request, invitation_id: InvitationId, admin: ApiAdmin, services: ServicesDep
) -> NewInvitationOut:
    new = await services.administration.resend_invitation(admin, invitation_id, client=client_of(request))
    return NewInvitationOut.made(new, request)


@router.delete(
    "/invitations/{invitation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Withdraw an invitation: its link no longer opens an account (admin.invitation_revoked)",
    responses=problems((404, "No such invitation"), (409, "It was already accepted"), 422),
)
async def revoke_invitation(
    request: Request, invitation_id: InvitationId, admin: ApiAdmin, services: ServicesDep
) -> Response:
    await services.administration.revoke_invitation(admin, invitation_id, client=client_of(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/signup", summary="The sign-up policy in force, as the environment sets it")
async def signup_policy(admin: ApiAdmin, services: ServicesDep) -> SignupOut:
    terms = services.administration.signup_terms(admin)
    return SignupOut(
        policy=terms.policy.mode, invitation_days=terms.invitation_days, default_quota_bytes=terms.default_quota_bytes
    )
