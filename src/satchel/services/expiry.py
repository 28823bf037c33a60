"""Expiry: ended shares go, and with them the files their owners asked to remove; bytes first, then rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from satchel.domain.clock import utcnow
from satchel.ports.persistence import UnitOfWork, UnitOfWorkFactory
from satchel.ports.storage import ObjectStore
from satchel.services.uploads import Uploads

BATCH = 200


@dataclass
class PurgeReport:
    shares: list[int] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    uploads: int = 0  # abandoned resumable uploads removed with their staged bytes


class Expiry:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        store: ObjectStore,
        uploads: Uploads | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._uow = uow
        self._store = store
        self._uploads = uploads
        self._clock = clock

    async def purge_expired(
        self, *, dry_run: bool = False, progress: Callable[[str, int, int], None] | None = None
    ) -> PurgeReport:
        """Remove ended shares (expired, revoked, used up) and abandoned uploads. Idempotent: a second run
        finds nothing to do."""
        report = PurgeReport()
        tell = progress or (lambda *_: None)
        now = self._clock()
        await self._purge_shares(now, report, tell, dry_run=dry_run)
        if self._uploads is not None:
            report.uploads = await self._uploads.purge_expired(now, dry_run=dry_run)
        return report

    async def _purge_shares(
        self, now: datetime, report: PurgeReport, tell: Callable[[str, int, int], None], *, dry_run: bool
    ) -> None:
        while True:
            async with self._uow() as uow:
                after = report.shares[-1] if report.shares else 0  # page by id: a dry run deletes nothing
                ended = await uow.shares.ended(now, limit=BATCH, after_id=after)
                if not ended:
                    return
                tell("shares", len(report.shares) + len(ended), len(report.shares) + len(ended))
                for share in ended:
                    report.shares.append(share.id)
                    if share.delete_files_when_done:
                        for file_id in share.file_ids:
                            await self._purge_file(uow, file_id, now, report, dry_run=dry_run)
                    if not dry_run:
                        await uow.shares.delete(share.id)
                if not dry_run:
                    await uow.commit()

    async def _purge_file(
        self, work: UnitOfWork, file_id: str, now: datetime, report: PurgeReport, *, dry_run: bool
    ) -> None:
        file = await work.files.get(file_id)
        if file is None or file.id in report.files or await work.shares.open_shares_of(file_id, now) > 0:
            return  # gone already, or still shared through another open link
        report.files.append(file.id)
        report.freed_bytes += file.size
        if dry_run:
            return
        # Bytes first: a crash after this leaves a row without bytes, which `storage verify` reports,
        # never bytes nobody can find.
        await self._store.delete(file.storage_key)
        if file.thumbnail_key:
            await self._store.delete(file.thumbnail_key)
        await work.files.delete(file.id)
        await work.users.release_bytes(file.owner_id, file.size)
