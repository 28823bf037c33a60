"""Expiry: ended shares lose the files their owners asked to remove, bytes first, then rows; their records stay
as history for a while, so their links keep saying why they ended, and then go too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from satchel.domain.clock import utcnow
from satchel.domain.sharing import history_ends
from satchel.ports.persistence import UnitOfWork, UnitOfWorkFactory
from satchel.ports.storage import ObjectStore
from satchel.services.uploads import Uploads

BATCH = 200
Progress = Callable[[str, int, int], None]


@dataclass
class PurgeReport:
    shares: list[int] = field(default_factory=list)  # ended shares dealt with: files handled, records kept
    files: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    uploads: int = 0  # abandoned resumable uploads removed with their staged bytes
    history: list[int] = field(default_factory=list)  # records of shares ended longer ago than the window, dropped


class Expiry:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        store: ObjectStore,
        uploads: Uploads | None = None,
        *,
        history_days: int = 30,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._uow = uow
        self._store = store
        self._uploads = uploads
        self._history_days = history_days
        self._clock = clock

    async def purge_expired(self, *, dry_run: bool = False, progress: Progress | None = None) -> PurgeReport:
        """Deal with ended shares (expired, revoked, used up): remove the files their owners asked to remove and
        keep their records; drop the records of those dealt with more than ``history_days`` ago; remove
        abandoned uploads. Idempotent: a second run finds nothing to do."""
        report = PurgeReport()
        tell = progress or (lambda *_: None)
        now = self._clock()
        await self._sweep_ended(now, report, tell, dry_run=dry_run)
        await self._drop_history(now, report, tell, dry_run=dry_run)
        if self._uploads is not None:
            report.uploads = await self._uploads.purge_expired(now, dry_run=dry_run)
        return report

    async def _sweep_ended(self, now: datetime, report: PurgeReport, tell: Progress, *, dry_run: bool) -> None:
        while True:
            async with self._uow() as uow:
                after = report.shares[-1] if report.shares else 0  # page by id: a dry run marks nothing
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
                        await uow.shares.mark_swept(share.id, now)
                if not dry_run:
                    await uow.commit()

    async def _drop_history(self, now: datetime, report: PurgeReport, tell: Progress, *, dry_run: bool) -> None:
        cutoff = history_ends(now, self._history_days)
        while True:
            async with self._uow() as uow:
                after = report.history[-1] if report.history else 0  # page by id: a dry run deletes nothing
                old = await uow.shares.swept_before(cutoff, limit=BATCH, after_id=after)
                if not old:
                    break
                report.history.extend(old)
                tell("history", len(report.history), len(report.history))
                if not dry_run:
                    for share_id in old:
                        await uow.shares.delete(share_id)
                    await uow.commit()
        if dry_run and self._history_days == 0:  # what a real run marks swept now, it drops in the same run
            report.history = sorted({*report.history, *report.shares})

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
