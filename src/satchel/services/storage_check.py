"""Storage verification: do the database and the object store agree? (`satchel storage verify`)"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from satchel.domain.clock import utcnow
from satchel.ports.persistence import UnitOfWorkFactory
from satchel.ports.storage import ObjectInfo, ObjectStore, UploadStaging

PREFIXES = ("files/", "thumbnails/")
# An upload stores its bytes a moment before its row, and a write in progress has staged bytes:
# younger ones are not orphans yet.
ORPHAN_GRACE = timedelta(hours=1)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class StorageReport:
    checked: int = 0
    orphans: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)  # staged bytes of uploads that will never finish
    removed: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not (self.orphans or self.missing or self.mismatched or self.interrupted)


class StorageCheck:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        store: ObjectStore,
        staging: UploadStaging,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._uow = uow
        self._store = store
        self._staging = staging
        self._clock = clock

    async def verify(
        self,
        *,
        deep: bool = False,
        fix: bool = False,
        grace: timedelta = ORPHAN_GRACE,
        progress: Progress | None = None,
    ) -> StorageReport:
        """Orphaned objects, staged bytes of interrupted uploads, rows whose bytes are missing, and (with
        ``deep``) checksum mismatches. With ``fix``, orphans and interrupted uploads older than ``grace`` go."""
        report = StorageReport()
        tell = progress or (lambda *_: None)
        async with self._uow() as uow:
            expected = await uow.files.all_keys()
            thumbnails = await uow.files.thumbnail_keys()
            uploads = await uow.uploads.live_ids()
        stored: dict[str, ObjectInfo] = {}
        for prefix in PREFIXES:
            async for info in self._store.list_objects(prefix):
                stored[info.key] = info
        cutoff = self._clock() - grace
        for key, info in stored.items():
            if key not in expected and key not in thumbnails and info.modified < cutoff:
                report.orphans.append(key)
        async for leftover in self._staging.leftovers():
            if leftover.upload_id not in uploads and leftover.modified < cutoff:
                report.interrupted.append(leftover.ref)
        for done, (key, (file_id, size, sha256)) in enumerate(sorted(expected.items()), start=1):
            tell("files", done, len(expected))
            report.checked += 1
            found = stored.get(key)
            if found is None:
                report.missing.append(file_id)
            elif found.size != size or (deep and await self._store.sha256(key) != sha256):
                report.mismatched.append(file_id)
        if fix:
            for key in report.orphans:
                await self._store.delete(key)
                report.removed.append(key)
            for ref in report.interrupted:
                await self._staging.remove(ref)
                report.removed.append(ref)
        return report
