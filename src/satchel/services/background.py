"""The work done outside requests: virus scans, thumbnails, mail. Each is idempotent for its job id."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from satchel.domain import notifications
from satchel.domain.clock import Clock, utcnow
from satchel.domain.errors import InvalidInput
from satchel.domain.files import CLEAN, INFECTED, PENDING, SCAN_FAILED, StoredFile, human_size
from satchel.domain.invitations import invitation_path, link_token
from satchel.domain.notifications import Notice
from satchel.domain.one_time_links import token_hash
from satchel.domain.password_resets import reset_path
from satchel.ports.content import Scanner, Thumbnailer
from satchel.ports.mail import Mailer, Message
from satchel.ports.persistence import UnitOfWork, UnitOfWorkFactory
from satchel.ports.storage import ObjectStore
from satchel.services.password_resets import NOTICE as PASSWORD_RESET_NOTICE
from satchel.services.password_resets import PasswordResets

log = logging.getLogger("satchel.jobs")
THUMBNAIL_MAX_BYTES = 40 * 1024 * 1024  # larger images are not worth decoding for a preview


class Background:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        store: ObjectStore,
        mailer: Mailer,
        *,
        scanner: Scanner | None,
        thumbnailer: Thumbnailer,
        base_url: str,
        invitation_key: bytes = b"",
        resets: PasswordResets | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._uow = uow
        self._store = store
        self._mailer = mailer
        self._scanner = scanner
        self._thumbnailer = thumbnailer
        self._base_url = base_url.rstrip("/")
        self._invitation_key = invitation_key
        self._resets = resets
        self._clock = clock

    async def _file(self, file_id: str) -> StoredFile | None:
        async with self._uow() as uow:
            return await uow.files.get(file_id)

    async def scan(self, job_id: str, file_id: str) -> str:
        """Stream the file through the scanner; quarantine it and tell its owner if it is infected."""
        file = await self._file(file_id)
        if file is None or file.scan_status != PENDING:
            return "skipped"  # deleted since, or already decided by an earlier run of this job
        if self._scanner is None:
            raise InvalidInput("A scan job ran, but CLAMAV_URL is not set.")
        found = await self._scanner.scan(self._store.get_stream(file.storage_key, 0, file.size))
        async with self._uow() as uow:
            await uow.files.set_scan_status(file.id, INFECTED if found else CLEAN)
            if found:
                owner = await uow.users.get(file.owner_id)
                if owner:
                    payload = {"notice": "quarantined", "file_id": file.id, "signature": found}
                    await uow.jobs.add("mail", payload, queue="mail")
            await uow.commit()
        log.info("scan.done", extra={"job_id": job_id, "file_id": file.id, "infected": bool(found)})
        return INFECTED if found else CLEAN

    async def scan_gave_up(self, file_id: str) -> None:
        """The scan job is parked: record that the file could not be checked."""
        async with self._uow() as uow:
            file = await uow.files.get(file_id)
            if file is not None and file.scan_status == PENDING:
                await uow.files.set_scan_status(file_id, SCAN_FAILED)
                await uow.commit()

    async def gave_up(self, kind: str, payload: dict[str, Any]) -> None:
        """A job of ``kind`` ran out of attempts: leave no record waiting for it (a file "pending" forever)."""
        if kind == "scan":
            await self.scan_gave_up(payload["file_id"])

    async def thumbnail(self, job_id: str, file_id: str) -> str:
        file = await self._file(file_id)
        if file is None or file.thumbnail_key or file.size > THUMBNAIL_MAX_BYTES:
            return "skipped"
        data = b"".join([chunk async for chunk in self._store.get_stream(file.storage_key, 0, file.size)])
        preview = await self._thumbnailer.thumbnail(data)
        if preview is None:
            return "not an image"
        key = f"thumbnails/{file.id}.webp"  # the same key on a rerun: writing it twice changes nothing

        async def one_chunk() -> Any:
            yield preview

        await self._store.put_stream(key, one_chunk(), content_type="image/webp")
        async with self._uow() as uow:
            await uow.files.set_thumbnail(file.id, key)
            await uow.commit()
        return "made"

    async def mail(self, job_id: str, payload: dict[str, Any]) -> str:
        notice = await self._compose(payload)
        if notice is None:
            return "skipped"
        message = Message(
            to=notice.to,
            subject=notice.subject,
            text=notice.text,
            html=notice.html,
            headers={"Message-ID": f"<{job_id}@satchel>"},  # a rerun sends the same id: receivers can drop it
        )
        await asyncio.to_thread(self._mailer.send, message)
        return "sent"

    async def _compose(self, payload: dict[str, Any]) -> Notice | None:
        kind = payload.get("notice")
        if kind == PASSWORD_RESET_NOTICE:
            return await self._password_reset(payload)
        async with self._uow() as uow:
            if kind == "quarantined":
                file = await uow.files.get(payload["file_id"])
                owner = await uow.users.get(file.owner_id) if file else None
                if file is None or owner is None:
                    return None
                return notifications.quarantined(owner.email, file.name, payload["signature"])
            if kind == "request_received":
                return await self._request_received(uow, payload)
            if kind == "invitation":
                return await self._invitation(uow, payload)
            share = await uow.shares.get(int(payload["share_id"]))
            if share is None or (kind == "share_invitation" and not share.is_open(self._clock())):
                return None  # gone, or ended before we could tell anyone about it
            owner = await uow.users.get(share.owner_id)
            names = [f.name for f in await uow.files.get_many(share.file_ids)]
        if owner is None:
            return None
        if kind == "share_invitation":
            url = f"{self._base_url}/s/{share.token}"
            return notifications.share_invitation(
                payload["recipient"], owner.email, url, names, share.note, share.title
            )
        if kind == "first_download":
            return notifications.first_download(owner.email, f"{self._base_url}/shares/{share.id}", names)
        raise InvalidInput(f"Unknown notice {kind!r}.")

    async def _request_received(self, uow: UnitOfWork, payload: dict[str, Any]) -> Notice | None:
        request = await uow.requests.get(int(payload["request_id"]))
        file = await uow.files.get(payload["file_id"])
        owner = await uow.users.get(request.owner_id) if request else None
        if request is None or file is None or owner is None:
            return None  # the file or the request is gone: nothing left to tell
        url = f"{self._base_url}/requests/{request.id}"
        return notifications.request_received(owner.email, url, file.name, human_size(file.size), request.note)

    async def _invitation(self, uow: UnitOfWork, payload: dict[str, Any]) -> Notice | None:
        token = link_token(self._invitation_key, str(payload["nonce"]))
        invitation = await uow.invitations.by_token(token_hash(token))
        if invitation is None or invitation.id != payload["invitation_id"] or not invitation.is_open(self._clock()):
            return None  # re-sent with a new link since, withdrawn, used or expired: this link must not go out
        url = self._base_url + invitation_path(token)
        return notifications.invitation(
            invitation.email, invitation.invited_by_email, url, invitation.expires_at, as_admin=invitation.is_admin
        )

    async def _password_reset(self, payload: dict[str, Any]) -> Notice | None:
        if self._resets is None:
            raise InvalidInput("A password reset mail job ran, but this worker has no password resets.")
        issued = await self._resets.issue(payload)
        if issued is None:
            return None  # no account, a disabled one, or the link used or expired since: nothing goes out
        url = self._base_url + reset_path(issued.token)
        return notifications.password_reset(issued.email, url, issued.expires_at)


Handler = Callable[[str, dict[str, Any]], Any]


def handlers(background: Background) -> dict[str, Handler]:
    """Job kind -> the use case that does it."""
    return {
        "scan": lambda job_id, p: background.scan(job_id, p["file_id"]),
        "thumbnail": lambda job_id, p: background.thumbnail(job_id, p["file_id"]),
        "mail": background.mail,
    }
