"""Previews use cases: what a file's owner, or anyone holding a link, may look at without downloading it.

A preview is never a download: it takes nothing from a link's count. So a link with a download limit shows
none unless its owner allowed them (``Share.previews_allowed``), and every other rule of the link holds as for
a download: open, unlocked, not quarantined (and scanned, where the server requires it).

The type a file is previewed as is decided once, from its first bytes, when it is stored (``Files.record``)
and kept on its record: showing a page costs no read of the object store. Files stored before previews
existed are decided the first time one is shown, and the decision is kept too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from satchel.domain.accounts import User
from satchel.domain.clock import utcnow
from satchel.domain.errors import NotFound
from satchel.domain.files import FileQuarantined, ScanPending, StoredFile
from satchel.domain.previews import (
    PASS_LIFETIME,
    SNIFF_BYTES,
    TEXT_EXCERPT_BYTES,
    NoPreview,
    PreviewPass,
    decode_text,
    kind_of,
    preview_type,
)
from satchel.domain.sharing import Share
from satchel.ports.persistence import UnitOfWorkFactory
from satchel.ports.storage import ObjectStore
from satchel.services.sharing import ShareView

log = logging.getLogger("satchel.previews")
# What leaves a page without a preview, rather than failing it: the page tells why elsewhere (a scan badge).
_NOTHING_TO_SHOW = (NoPreview, FileQuarantined, ScanPending)


async def sniff(store: ObjectStore, key: str, size: int) -> str:
    """The type the bytes stored under ``key`` are previewed as, from their first ``SNIFF_BYTES``."""
    head = b"".join([chunk async for chunk in store.get_stream(key, 0, min(size, SNIFF_BYTES))])
    return preview_type(head, whole=size <= SNIFF_BYTES)


@dataclass(frozen=True)
class Shown:
    """A file as a browser may show it: served as ``served_as``, to its owner or through ``share``."""

    file: StoredFile
    served_as: str
    share: Share | None = None
    text: str | None = None  # a text preview on a page: its first TEXT_EXCERPT_BYTES, decoded
    truncated: bool = False

    @property
    def kind(self) -> str | None:
        return kind_of(self.served_as)


class Previews:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        store: ObjectStore,
        *,
        key: bytes,
        scan_required: bool = False,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._uow = uow
        self._store = store
        self._key = key
        self._scan_required = scan_required
        self._clock = clock

    async def own(self, owner: User, file_id: str) -> Shown:
        """A preview of one of the owner's files; someone else's is "no such file", as a missing one is."""
        async with self._uow() as uow:
            file = await uow.files.get(file_id)
        if file is None or file.owner_id != owner.id:
            raise NotFound("No such file.")
        return await self._shown(file, scan_required=False)  # owners see unscanned files, never infected ones

    async def shared(self, view: ShareView, file_id: str, *, unlocked: bool) -> Shown:
        """A preview of one file of an open link: unlocked, with previews allowed. Nothing is counted."""
        view.share.authorize_preview(self._clock(), unlocked=unlocked)
        return await self._shown(view.file(file_id), scan_required=self._scan_required, share=view.share)

    async def on_owner_page(self, owner: User, file: StoredFile) -> Shown | None:
        """What the owner's page of ``file`` shows, text included; None when it has no preview."""
        if file.owner_id != owner.id:
            raise NotFound("No such file.")
        try:
            shown = await self._shown(file, scan_required=False)
        except _NOTHING_TO_SHOW:
            return None
        return await self._with_text(shown)

    async def on_share_page(self, view: ShareView, file_id: str | None) -> tuple[Shown | None, set[str]]:
        """What an unlocked link's page shows: the preview of ``file_id`` (or of its only file), and which of its
        files have one at all. Nothing when its owner did not allow previews."""
        if not view.share.previews_allowed:
            return None, set()
        previewable = {f.id for f in view.files if kind_of(await self._served_as(f))}
        chosen = file_id or (view.files[0].id if len(view.files) == 1 else None)
        if chosen is None:
            return None, previewable
        view.file(chosen)  # a file the link does not hold is "no such file"
        try:
            shown = await self.shared(view, chosen, unlocked=True)
        except _NOTHING_TO_SHOW:
            return None, previewable
        return await self._with_text(shown), previewable

    async def redeem(self, signed: str) -> Shown:
        """The preview a signed pass (``pass_for``) grants, while it has not expired and what granted it holds."""
        now = self._clock()
        grant = PreviewPass.redeem(signed, self._key, now)
        async with self._uow() as uow:
            if grant.share_id is None:
                file = await uow.files.get(grant.file_id)
                share = None
            else:
                share = await uow.shares.get(grant.share_id)
                file = await uow.files.get(grant.file_id) if share and grant.file_id in share.file_ids else None
        if file is None or (share is None and file.owner_id != grant.owner_id):
            raise NotFound("No such file.")
        if share is None:
            return await self._shown(file, scan_required=False)
        # The pass was made for a page that was unlocked: it stands for the password, never for the link's terms.
        return await self.shared(ShareView(share, [file]), file.id, unlocked=True)

    def pass_for(self, shown: Shown) -> str:
        """A signed, short-lived pass to ``shown``, for a preview origin that the app's cookie does not reach."""
        expires = self._clock() + PASS_LIFETIME
        if shown.share is None:
            return PreviewPass(shown.file.id, expires, owner_id=shown.file.owner_id).sign(self._key)
        expires = min(expires, shown.share.expires_at)
        return PreviewPass(shown.file.id, expires, share_id=shown.share.id).sign(self._key)

    async def _shown(self, file: StoredFile, *, scan_required: bool, share: Share | None = None) -> Shown:
        file.ensure_downloadable(scan_required=scan_required)
        served_as = await self._served_as(file)
        if kind_of(served_as) is None:
            raise NoPreview()
        return Shown(file, served_as, share)

    async def _with_text(self, shown: Shown) -> Shown:
        if shown.kind != "text":
            return shown
        end = min(shown.file.size, TEXT_EXCERPT_BYTES)
        data = b"".join([chunk async for chunk in self._store.get_stream(shown.file.storage_key, 0, end)])
        whole = end == shown.file.size
        text = decode_text(data, whole=whole) or data.decode("utf-8", errors="replace")
        return replace(shown, text=text, truncated=not whole)

    async def _served_as(self, file: StoredFile) -> str:
        if file.preview_type is not None:
            return file.preview_type
        decided = await sniff(self._store, file.storage_key, file.size)  # a file stored before previews existed
        async with self._uow() as uow:
            await uow.files.set_preview_type(file.id, decided)
            await uow.commit()
        file.preview_type = decided
        log.info("preview.decided", extra={"file_id": file.id, "preview_type": decided})
        return decided
