"""/api/snippets: text kept as a file and shared like one (`curl --data-binary @notes.txt …`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from satchel.domain.errors import DomainError
from satchel.domain.sharing import MAX_DOWNLOADS
from satchel.services.files import SNIPPET_MAX_BYTES, SnippetTooLarge
from satchel.web.api.files import keep_and_share
from satchel.web.api.schemas import ALLOW_PREVIEWS, LINK_HOURS, SHORTEST_LINK_HOURS, UploadOut
from satchel.web.bodies import read_body
from satchel.web.openapi import SIGNED_IN, problems
from satchel.web.params import FILE_NAME_RULE, file_name
from satchel.web.security import ApiUser, ServicesDep, client_of

router = APIRouter(prefix="/api/snippets", tags=["files"], dependencies=SIGNED_IN, responses=problems(401, 503))
# curl's --data-binary says application/x-www-form-urlencoded unless told otherwise, and sends the bytes untouched.
TEXT_TYPES = ("", "text/plain", "application/x-www-form-urlencoded")
_TEXT_BODY = {
    "required": True,
    "description": f"The text, UTF-8, at most {SNIPPET_MAX_BYTES:,} bytes; kept byte for byte.",
    "content": {"text/plain": {"schema": {"type": "string", "minLength": 1}}},
}
SnippetName = Annotated[
    str | None,
    Query(
        max_length=1000,
        description=f"the file's name; default `snippet DATE TIME.txt`. {FILE_NAME_RULE}",
        json_schema_extra=file_name,
    ),
]


class NotText(DomainError):
    """Send the snippet as text/plain (UTF-8)."""

    status = 415


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Keep a text snippet as a file and, unless `share=false`, share it",
    responses=problems(
        (403, "Missing `X-CSRF-Token` (browser sessions)"),
        (408, "The body stopped arriving (`SATCHEL_BODY_TIMEOUT`); nothing was kept"),
        (413, "Over 1 MB, or more than your remaining quota; nothing was kept"),
        (415, "Not sent as `text/plain`"),
        (422, "Empty, not UTF-8, or invalid terms or name"),
        (429, "Too many uploads; wait `Retry-After` seconds"),
    ),
    openapi_extra={"requestBody": _TEXT_BODY},
)
async def create_snippet(
    request: Request,
    user: ApiUser,
    services: ServicesDep,
    name: SnippetName = None,
    share: bool = True,
    expires_in_hours: Annotated[float | None, Query(ge=SHORTEST_LINK_HOURS, description=LINK_HOURS)] = None,
    max_downloads: Annotated[int | None, Query(ge=1, le=MAX_DOWNLOADS)] = None,
    allow_previews: Annotated[bool, Query(description=ALLOW_PREVIEWS)] = False,
) -> UploadOut:
    """`curl --data-binary @notes.txt -H "Authorization: Bearer $TOKEN" $URL/api/snippets?name=notes.txt`: the
    text is kept as a UTF-8 file, shown as text on its pages (escaped, with a copy button), and shared."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() not in TEXT_TYPES:
        raise NotText()
    terms = services.sharing.terms(expires_in_hours, max_downloads, allow_previews=allow_previews) if share else None
    text = await read_body(request, services.settings.body_timeout, SNIPPET_MAX_BYTES, SnippetTooLarge())
    return await keep_and_share(
        request, services, user, terms, lambda: services.files.paste(user, text, name=name, client=client_of(request))
    )
