"""Resumable uploads through an upload link: the link says who may send and how much, ``Uploads`` carries the bytes.

The same tus machinery as the owner's own uploads (offset in the database, bytes in the staging, one writer
at a time, completion through ``Files.record`` in one transaction); what differs is who is let in (the link
and its password, not an account) and which limits apply: the link's files and bytes and the per-client
limit on top of the owner's quota and the server's maximum, checked when the upload starts, and atomically
when it becomes a file. An upload the link can no longer take (expired, closed, full, or no room for it
left) is removed with its staged bytes by the next request through the link, or else by the expiry sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from satchel.domain.clock import utcnow
from satchel.domain.uploads import Upload, UploadNotFound
from satchel.ports.persistence import UnitOfWorkFactory
from satchel.services.requests import Credentials, OpenRequest, Requests
from satchel.services.uploads import Body, Through, Uploads, UploadState

log = logging.getLogger("satchel.requests")


class RequestUploads:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        requests: Requests,
        uploads: Uploads,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._uow = uow
        self._requests = requests
        self._uploads = uploads
        self._clock = clock

    async def create(
        self,
        token: str,
        credentials: Credentials,
        *,
        client: str,
        length: int,
        name: str,
        content_type: str | None,
        first: Body | None = None,
    ) -> UploadState:
        """Start a resumable upload of ``length`` bytes through the link ``token`` (with its ``first`` bytes),
        refused at once if the link, its owner's quota or the server could never take it."""
        opened = await self._requests.open(token)
        request = opened.request
        await self._requests.admit(request, credentials, client=client)
        request.authorize_upload(self._clock(), unlocked=True, size=length)
        await self._requests.count_upload(request, client)  # counted per file started, not per request
        through = self._through(opened)
        upload = await self._uploads.create(
            opened.owner, length=length, name=name, content_type=content_type, through=through
        )
        log.info("request.upload_started", extra={"request_id": request.id, "upload_id": upload.id, "length": length})
        if first is None:
            return UploadState(upload)
        return await self._append(opened, upload.id, 0, first, client)

    async def state(self, token: str, upload_id: str, credentials: Credentials, *, client: str) -> UploadState:
        """Where an upload through the link stands (finishing one whose last request died, as ``Uploads.state``)."""
        opened = await self._reach(token, upload_id, credentials, client)
        return await self._uploads.state(opened.owner, upload_id, client=client, through=self._through(opened))

    async def append(
        self, token: str, upload_id: str, credentials: Credentials, *, client: str, offset: int, body: Body
    ) -> UploadState:
        """The bytes of one request through the link, at ``offset``; the one that completes the upload makes it
        a file of the link's, or is refused (and leaves nothing) if the link took its last file meanwhile."""
        opened = await self._reach(token, upload_id, credentials, client)
        return await self._append(opened, upload_id, offset, body, client)

    async def terminate(self, token: str, upload_id: str, credentials: Credentials, *, client: str) -> None:
        """Abandon an upload through the link: its staged bytes go at once."""
        opened = await self._reach(token, upload_id, credentials, client)
        await self._uploads.terminate(opened.owner, upload_id, through=self._through(opened))

    async def _append(self, opened: OpenRequest, upload_id: str, offset: int, body: Body, client: str) -> UploadState:
        return await self._uploads.append(
            opened.owner,
            upload_id,
            offset=offset,
            body=body,
            client=client,
            through=self._through(opened),
        )

    async def _reach(self, token: str, upload_id: str, credentials: Credentials, client: str) -> OpenRequest:
        """The link of an upload it holds, if the caller may go on with it. An upload the link can no longer take
        is removed here, and the link's reason told (410, or 413 when its room shrank below the upload)."""
        found = await self._requests.find(token)
        request, now = found.request, self._clock()
        upload = await self._upload_of(found, upload_id)
        if upload is None:
            ended = request.ended_by(now)
            raise ended.error() if ended else UploadNotFound()  # an ended link's uploads went with it
        if not upload.finished and not request.can_take(now, upload.length):
            await self._uploads.remove_if_abandoned(upload.id, now)
            log.info("request.upload_refused", extra={"request_id": request.id, "upload_id": upload.id})
            raise request.refusal(now, upload.length)
        # Uncounted: only someone who gave the password when starting this upload could name it.
        await self._requests.admit(request, credentials, client=client, counted=False)
        return found

    async def _upload_of(self, found: OpenRequest, upload_id: str) -> Upload | None:
        """The upload, if it came in through this link; any other is as good as missing."""
        async with self._uow() as uow:
            upload = await uow.uploads.get(upload_id)
        if upload is None:
            return None
        try:
            upload.ensure_reached(found.owner.id, found.request.id)
        except UploadNotFound:
            return None
        return upload

    def _through(self, opened: OpenRequest) -> Through:
        return Through(opened.request.id, also=self._requests.taking(opened.request))
