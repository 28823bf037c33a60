"""What the API sends and accepts: one model per resource, the same names everywhere."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from satchel.domain.accounts import ApiToken, User
from satchel.domain.files import StoredFile
from satchel.services.sharing import ShareView

T = TypeVar("T")


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
    note: str | None
    files: list[FileOut]

    @classmethod
    def of(cls, view: ShareView, base_url: str, now: datetime) -> ShareOut:
        share = view.share
        return cls(
            id=share.id, url=f"{base_url}/s/{share.token}", token=share.token, status=share.status(now),
            created_at=share.created_at, expires_at=share.expires_at, max_downloads=share.max_downloads,
            download_count=share.download_count, remaining_downloads=share.remaining_downloads,
            has_password=share.has_password, note=share.note, files=[FileOut.of(f) for f in view.files],
        )  # fmt: skip


class FileDetailsOut(FileOut):
    shares: list[ShareOut]


class UploadOut(BaseModel):
    file: FileOut
    share: ShareOut | None = None


class RenameIn(BaseModel):
    name: str = Field(min_length=1, max_length=1000)


class ShareIn(BaseModel):
    file_ids: list[str] = Field(min_length=1, max_length=100)
    expires_in_hours: float | None = Field(
        None, gt=0, description="default SATCHEL_SHARE_DEFAULT_DAYS, at most SATCHEL_SHARE_MAX_DAYS"
    )
    max_downloads: int | None = Field(None, ge=1, le=1_000_000)
    password: str | None = Field(None, max_length=1024)
    note: str | None = Field(None, max_length=1000)
    notify: list[str] = Field(default_factory=list, max_length=20, description="emails to send the link to")
    delete_files_when_done: bool = Field(False, description="delete the files once the link has ended")


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)


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


class PasswordChangeIn(BaseModel):
    current_password: str
    new_password: str
