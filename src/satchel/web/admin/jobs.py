"""/admin/jobs: failed jobs, parked after their last attempt, and running one again."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from satchel.web.admin.listing import back_to
from satchel.web.security import CsrfChecked, PageAdmin, ServicesDep, client_of
from satchel.web.templating import flash, render

router = APIRouter(include_in_schema=False)
JobId = Annotated[str, Path(pattern="^[0-9a-f]{32}$")]


@router.get("/jobs")
async def jobs_page(request: Request, admin: PageAdmin, services: ServicesDep) -> Response:
    failed = await services.administration.failed_jobs(admin, limit=100)
    return await render(request, "admin/jobs.html", admin_tab="jobs", jobs=failed)


@router.post("/jobs/{job_id}/retry", dependencies=[CsrfChecked])
async def retry_job(request: Request, admin: PageAdmin, services: ServicesDep, job_id: JobId) -> Response:
    await services.administration.retry_job(admin, job_id, client=client_of(request))
    await flash(request, "The job is back in the queue with a fresh set of attempts.")
    return back_to("/admin/jobs")
