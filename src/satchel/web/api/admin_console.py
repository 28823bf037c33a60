"""/api/admin/…: every user's files and shares, the audit trail and failed jobs, for administrators.

The same use cases as the /admin pages (services/administration.py); each checks ``is_admin`` again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BaseModel, Field

from satchel.domain.audit import ACTIONS, AuditEvent
from satchel.domain.clock import utcnow
from satchel.domain.jobs import Job
from satchel.ports.persistence import FileSort, OwnedFile, OwnedShare
from satchel.services.administration import MAX_PAGE, audit_filter
from satchel.web.api.schemas import FileOut, Page
from satchel.web.openapi import SIGNED_IN, problems
from satchel.web.params import DateTime, FileId, Offset, RowId
from satchel.web.security import ApiAdmin, ServicesDep, client_of

router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    dependencies=SIGNED_IN,
    responses=problems(401, (403, "Not an administrator, or a missing `X-CSRF-Token`"), 503),
)
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
ShareStatus = Literal["active", "expired", "revoked", "used up"]
AuditAction = Literal[ACTIONS]  # type: ignore[valid-type]
JOB_ID_PATTERN = "^[0-9a-f]{32}$"  # 16 random bytes in hex, as adapters/db/jobs.py makes them


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    action: str = Field(description="what happened: " + ", ".join(f"`{a}`" for a in ACTIONS))
    actor_id: int | None = Field(description="who did it; null for a visitor, or an account since deleted")
    actor_email: str | None = Field(description="their address at the time (for a failed sign-in: the one tried)")
    subject: str | None = Field(
        description="what it was done to, by kind and id: `file:<id>`, `share:<id>`, `user:<id>` or `job:<id>`"
    )
    client: str | None = Field(description="the client's address")
    details: dict[str, Any] = Field(description="small facts: a file's name and size, a share's files")

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventOut:
        return cls(**{name: getattr(event, name) for name in cls.model_fields})


class AdminFileOut(FileOut):
    owner_id: int
    owner_email: str

    @classmethod
    def owned(cls, entry: OwnedFile) -> AdminFileOut:
        return cls(**FileOut.of(entry.file).model_dump(), owner_id=entry.file.owner_id, owner_email=entry.owner_email)


class AdminShareOut(BaseModel):
    id: int
    owner_id: int
    owner_email: str
    status: str = Field(description="active, expired, revoked or used up")
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    max_downloads: int | None
    download_count: int
    has_password: bool
    title: str | None
    file_ids: list[str]
    file_names: list[str]

    @classmethod
    def of(cls, entry: OwnedShare, now: datetime) -> AdminShareOut:
        share = entry.share
        fields = {name: getattr(share, name) for name in cls.model_fields if hasattr(share, name)}
        fields.pop("status", None)
        return cls(**fields, owner_email=entry.owner_email, status=share.status(now), file_names=entry.file_names)


class FailedJobOut(BaseModel):
    id: str
    kind: str
    queue: str
    attempts: int
    max_attempts: int
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None = Field(description="when its last attempt failed")

    @classmethod
    def of(cls, job: Job) -> FailedJobOut:
        return cls(**{name: getattr(job, name) for name in cls.model_fields})


@router.get("/audit", summary="The audit trail, newest first, filtered and paged", responses=problems(422))
async def list_audit(
    admin: ApiAdmin,
    services: ServicesDep,
    action: Annotated[AuditAction | None, Query(description="one action")] = None,
    user: Annotated[str | None, Query(max_length=254, description="the actor's email address")] = None,
    subject: Annotated[str | None, Query(max_length=64, description="what it was done to, like `share:12`")] = None,
    since: Annotated[DateTime | None, Query(description="from this time on, with its time zone")] = None,
    until: Annotated[DateTime | None, Query(description="before this time, with its time zone")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[AuditEventOut]:
    where = audit_filter(action=action, email=user, subject=subject, since=since, until=until)
    events, total = await services.administration.audit(admin, where, limit=limit, offset=offset)
    return Page(items=[AuditEventOut.of(e) for e in events], total=total, limit=limit, offset=offset)


@router.get("/files", summary="Every user's files, with their owner", responses=problems(422))
async def list_files(
    admin: ApiAdmin,
    services: ServicesDep,
    sort: FileSort = "-created",
    q: Annotated[str | None, Query(max_length=254, description="part of the file's name or owner's email")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[AdminFileOut]:
    found, total = await services.administration.files(admin, sort=sort, search=q, limit=limit, offset=offset)
    return Page(items=[AdminFileOut.owned(f) for f in found], total=total, limit=limit, offset=offset)


@router.delete(
    "/files/{file_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete anyone's file and its bytes (recorded as admin.file_deleted)",
    responses=problems((404, "No such file"), 422),
)
async def delete_file(request: Request, admin: ApiAdmin, services: ServicesDep, file_id: FileId) -> Response:
    await services.administration.delete_file(admin, file_id, client=client_of(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/shares", summary="Every user's shares, newest first", responses=problems(422))
async def list_shares(
    admin: ApiAdmin,
    services: ServicesDep,
    status: ShareStatus | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[AdminShareOut]:
    found, total = await services.administration.shares(admin, status=status, limit=limit, offset=offset)
    now = utcnow()
    return Page(items=[AdminShareOut.of(s, now) for s in found], total=total, limit=limit, offset=offset)


@router.delete(
    "/shares/{share_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke anyone's share (recorded as admin.share_revoked)",
    responses=problems((404, "No such share"), 422),
)
async def revoke_share(request: Request, admin: ApiAdmin, services: ServicesDep, share_id: RowId) -> Response:
    await services.administration.revoke_share(admin, share_id, client=client_of(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/jobs", summary="Failed jobs (parked after their last attempt), newest first", responses=problems(422))
async def list_failed_jobs(admin: ApiAdmin, services: ServicesDep, limit: Limit = 100) -> list[FailedJobOut]:
    return [FailedJobOut.of(j) for j in await services.administration.failed_jobs(admin, limit=limit)]


JobId = Annotated[str, Path(description="a job's id", pattern=JOB_ID_PATTERN)]


@router.post(
    "/jobs/{job_id}/retry",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Run a failed job again, with a fresh set of attempts (recorded as job.retried)",
    responses=problems((404, "No failed job with that id"), 422),
)
async def retry_job(request: Request, admin: ApiAdmin, services: ServicesDep, job_id: JobId) -> Response:
    await services.administration.retry_job(admin, job_id, client=client_of(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
