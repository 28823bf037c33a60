"""/admin/audit: the audit trail, newest first, filtered by action, user, subject and time, paged."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from satchel.domain.audit import ACTIONS, AuditEvent
from satchel.domain.errors import InvalidInput
from satchel.services.administration import audit_filter
from satchel.web.admin.listing import PAGE_SIZE, kept_query, offset_of, pages_of, typed_time
from satchel.web.pages import PageNumber
from satchel.web.security import PageAdmin, ServicesDep
from satchel.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/audit")
async def audit_page(
    request: Request,
    admin: PageAdmin,
    services: ServicesDep,
    action: str = "",
    user: str = "",
    subject: str = "",
    since: str = "",
    until: str = "",
    page: PageNumber = 1,
) -> Response:
    fields = {"action": action, "user": user, "subject": subject, "since": since, "until": until}
    events: list[AuditEvent] = []
    total, error = 0, None
    try:
        where = audit_filter(
            action=action, email=user, subject=subject, since=typed_time(since, "from"), until=typed_time(until, "to")
        )
        events, total = await services.administration.audit(admin, where, limit=PAGE_SIZE, offset=offset_of(page))
    except InvalidInput as exc:
        error = exc.message
    return await render(
        request,
        "admin/audit.html",
        422 if error else 200,
        admin_tab="audit",
        events=events,
        total=total,
        page=page,
        pages=pages_of(total),
        actions=ACTIONS,
        fields=fields,
        error=error,
        base_query=kept_query(**fields),
    )
