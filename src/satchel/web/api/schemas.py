"""What the API sends and accepts: one model per resource, the same names everywhere."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict

from satchel.domain.accounts import MAX_PASSWORD, MAX_TOKEN_NAME, MIN_PASSWORD, ApiToken, User, shows_as_text
from satchel.domain.files import StoredFile
from satchel.domain.requests import MAX_BYTES as MAX_REQUEST_BYTES
from satchel.domain.requests import MAX_FILES as MAX_REQUEST_FILES
from satchel.domain.requests import MAX_NOTE as MAX_REQUEST_NOTE
from satchel.domain.requests import UploadRequest
from satchel.domain.sharing import MAX_DOWNLOADS, MAX_NOTE, MAX_RECIPIENTS, MAX_TITLE, Share, breaks_a_title
from satchel.services.sharing import MAX_FILES_PER_SHARE, ShareView
from satchel.web.params import FILE_ID_PATTERN, FILE_NAME_RULE, file_name, refused_class
from satchel.web.urls import request_url, share_url

T = TypeVar("T")


class JsonIn(BaseModel):
    """A request body: its values of the JSON types the document gives them, never coerced (``true`` is not 1,
    ``"3"`` is not 3; but 3.0 is 3, as JSON Schema has it), so that what the document calls invalid is refused."""

    model_config = ConfigDict(strict=True)


def integer(value: object) -> object:
    # JSON Schema's integer is a number without a fraction, 3.0 included; never a boolean or a string.
    if isinstance(value, bool | str):
        raise ValueError("Input should be a valid integer")
    return value


# The integer fields of JsonIn bodies, their bounds first (after the validator, the document would lose them).
DownloadLimit = Annotated[int, Field(ge=1, le=MAX_DOWNLOADS), Strict(False), BeforeValidator(integer)]
FileLimit = Annotated[int, Field(ge=1, le=MAX_REQUEST_FILES), Strict(False), BeforeValidator(integer)]
ByteLimit = Annotated[int, Field(ge=1, le=MAX_REQUEST_BYTES), Strict(False), BeforeValidator(integer)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class UserOut(BaseModel):
    id: int
    email: str
    is_admin: bool
    quota_bytes: int
    used_bytes: int
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(**{name: getattr(user, name) for name in cls.model_fields})


class FileOut(BaseModel):
    id: str
    name: str
    size: int
    content_type: str
    sha256: str
    created_at: datetime
    scan_status: str = Field(description="unscanned, pending, clean, infected or failed")
    has_thumbnail: bool

    @classmethod
    def of(cls, file: StoredFile) -> FileOut:
        fields = {name: getattr(file, name) for name in cls.model_fields if name != "has_thumbnail"}
        return cls(**fields, has_thumbnail=file.thumbnail_key is not None)  # derived, not stored


class ShareOut(BaseModel):
    id: int
    url: str
    token: str
    status: str = Field(description="active, expired, revoked or used up")
    created_at: datetime
    expires_at: datetime
    max_downloads: int | None
    download_count: int
    remaining_downloads: int | None
    has_password: bool
    title: str | None = Field(description="the heading of the link's page, its invitations and listings")
    note: str | None
    allow_previews: bool = Field(description="previews on a link with a download limit (a link without one shows them)")
    files: list[FileOut]

    @classmethod
    def of(cls, view: ShareView, base_url: str, now: datetime) -> ShareOut:
        share = view.share
        return cls(
            id=share.id,
            url=share_url(base_url, share.token),
            token=share.token,
            status=share.status(now),
            created_at=share.created_at,
            expires_at=share.expires_at,
            max_downloads=share.max_downloads,
            download_count=share.download_count,
            remaining_downloads=share.remaining_downloads,
            has_password=share.has_password,
            title=share.title,
            note=share.note,
            allow_previews=share.allow_previews,
            files=[FileOut.of(f) for f in view.files],
        )


class ShareStatusOut(BaseModel):
    """What a share's public page shows of it, no more: for the page to follow its count without a reload."""

    downloads_left: int | None = Field(description="downloads the link still allows; null: it has no limit")
    expires_at: datetime

    @classmethod
    def of(cls, share: Share) -> ShareStatusOut:
        return cls(downloads_left=share.remaining_downloads, expires_at=share.expires_at)


class FileDetailsOut(FileOut):
    shares: list[ShareOut]


class UploadOut(BaseModel):
    file: FileOut
    share: ShareOut | None = None


class RenameIn(JsonIn):
    name: str = Field(min_length=1, max_length=1000, description=FILE_NAME_RULE, json_schema_extra=file_name)


ALLOW_PREVIEWS = (
    "with a download limit, let recipients look at the files in the browser too (a look is not counted); "
    "a link without a limit always shows previews"
)
SHORTEST_LINK_HOURS = 0.01  # 36 seconds: a shorter link is of no use, and under a microsecond it is none at all
LINK_HOURS = (
    f"at least {SHORTEST_LINK_HOURS}; default SATCHEL_SHARE_DEFAULT_DAYS, at most SATCHEL_SHARE_MAX_DAYS "
    "(the maximum below is this server's)"
)
# domain.accounts.normalize_email, after white space is stripped: one @, a dot after it, no white space or control
# characters, at most 254 characters (every regex dialect reads these escapes alike).
_SPACE = "\\t-\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
_ADDRESS_CHAR = f"[^@{_SPACE}\\x00-\\x1f\\x7f-\\x9f]"
_AT_MOST_254 = f"(?=[^\\n]{{1,254}}[{_SPACE}]*$)"
EMAIL_PATTERN = f"^[{_SPACE}]*{_AT_MOST_254}{_ADDRESS_CHAR}{{1,64}}@{_ADDRESS_CHAR}+\\.{_ADDRESS_CHAR}+[{_SPACE}]*$"
Email = Annotated[str, Field(json_schema_extra={"pattern": EMAIL_PATTERN}, description="an email address")]


@cache
def _title_breakers() -> str:
    return refused_class(breaks_a_title)  # every one of them lies in the BMP


def _share_title(schema: dict[str, Any]) -> None:
    schema["pattern"] = f"^[^{_title_breakers()}]*$"


# domain.sharing.clean_title: one line; white space around it is trimmed, and a blank title is no title.
ShareTitle = Annotated[
    str,
    Field(
        max_length=MAX_TITLE,
        description=f"shown as the heading of the link's page and in its invitations: up to {MAX_TITLE} "
        "characters, no line breaks, tabs or other control characters; blank means none",
        json_schema_extra=_share_title,
    ),
]


class ShareIn(JsonIn):
    file_ids: list[Annotated[str, Field(json_schema_extra={"pattern": FILE_ID_PATTERN})]] = Field(
        min_length=1, max_length=MAX_FILES_PER_SHARE
    )
    expires_in_hours: float | None = Field(None, ge=SHORTEST_LINK_HOURS, allow_inf_nan=False, description=LINK_HOURS)
    max_downloads: DownloadLimit | None = None
    password: str | None = Field(None, max_length=MAX_PASSWORD)
    title: ShareTitle | None = None
    note: str | None = Field(None, max_length=MAX_NOTE)
    notify: list[Annotated[str, Field(json_schema_extra={"pattern": EMAIL_PATTERN})]] = Field(
        default_factory=list, max_length=MAX_RECIPIENTS, description="email addresses to send the link to"
    )
    delete_files_when_done: bool = Field(False, description="delete the files once the link has ended")
    allow_previews: bool = Field(False, description=ALLOW_PREVIEWS)


# domain.accounts.clean_token_name, as a pattern: characters that show as text, at most 100 of them once white
# space around them is trimmed (the edges are neither white space nor what a name may not hold).
@cache
def _unshown() -> str:
    return refused_class(lambda char: not shows_as_text(char))


def _token_name(schema: dict[str, Any]) -> None:
    edge = f"[^{_unshown()}{_SPACE}]"
    schema["pattern"] = f"^[{_SPACE}]*{edge}(?:[^{_unshown()}]{{0,{MAX_TOKEN_NAME - 2}}}{edge})?[{_SPACE}]*$"


class TokenIn(JsonIn):
    name: str = Field(
        min_length=1,
        max_length=MAX_TOKEN_NAME,
        description=f"1 to {MAX_TOKEN_NAME} characters that show as text (no control, format, private-use or "
        "separator characters but the space), once white space around them is trimmed",
        json_schema_extra=_token_name,
    )


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        return cls(**{name: getattr(token, name) for name in cls.model_fields})


class NewTokenOut(TokenOut):
    token: str = Field(description="the secret: shown once, store it now")


class PasswordChangeIn(JsonIn):
    current_password: str = Field(max_length=MAX_PASSWORD)  # no longer password can be right
    new_password: str = Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)


class LivenessOut(BaseModel):
    status: Literal["ok"]
    release: str = Field(description="RELEASE_ID")
    version: str


class ReadinessOut(BaseModel):
    status: Literal["ready", "unavailable"]
    release: str = Field(description="RELEASE_ID")
    checks: dict[str, str] = Field(description="each backing service: `ok`, or why it is not")
    breakers: dict[str, str] = Field(description="each guarded service's circuit breaker: closed, open or half-open")
    detail: str | None = Field(None, description="why not ready: shutting down, or the failing services")


class RequestIn(JsonIn):
    expires_in_hours: float | None = Field(None, ge=SHORTEST_LINK_HOURS, allow_inf_nan=False, description=LINK_HOURS)
    max_files: FileLimit | None = Field(None, description="files it takes in all; none: any")
    max_bytes: ByteLimit | None = Field(None, description="bytes it takes in all; none: the owner's quota")
    password: str | None = Field(None, max_length=MAX_PASSWORD, description="uploaders must give it")
    note: str | None = Field(None, max_length=MAX_REQUEST_NOTE, description="shown to uploaders")


class RequestOut(BaseModel):
    id: int
    url: str = Field(description="the page uploaders open; `curl -T FILE {url}/files/NAME` uploads too")
    token: str
    status: str = Field(description="open, expired, revoked or full")
    created_at: datetime
    expires_at: datetime
    max_files: int | None
    max_bytes: int | None
    received_files: int
    received_bytes: int
    has_password: bool
    note: str | None
    files: list[FileOut] | None = Field(None, description="what came in (on a single request only)")

    @classmethod
    def of(
        cls, request: UploadRequest, base_url: str, now: datetime, files: list[StoredFile] | None = None
    ) -> RequestOut:
        return cls(
            id=request.id,
            url=request_url(base_url, request.token),
            token=request.token,
            status=request.status(now),
            created_at=request.created_at,
            expires_at=request.expires_at,
            max_files=request.max_files,
            max_bytes=request.max_bytes,
            received_files=request.received_files,
            received_bytes=request.received_bytes,
            has_password=request.has_password,
            note=request.note,
            files=None if files is None else [FileOut.of(f) for f in files],
        )
