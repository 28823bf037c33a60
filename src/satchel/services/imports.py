"""Importing files that are already on the server into an account: all of them or none, shared by one link if asked.

An operator's import goes through the upload's own steps (``Files.admit``, ``Files.land``, ``Files.add``): an
active account, names cleaned, the server's maximum and the owner's quota, SHA-256 and size counted while the
bytes stream, each file's row, jobs and audit event. What differs is the transaction: every file (and the link)
is recorded in one, after every byte has landed, so a refusal or a failure anywhere leaves nothing behind, no
bytes and no rows, not even an audit event of a file that was never really there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from satchel.domain.accounts import QuotaExceeded, User, normalize_email
from satchel.domain.errors import DomainError, InvalidInput, NotFound
from satchel.domain.files import StoredFile, human_size
from satchel.domain.sharing import ShareTerms
from satchel.ports.persistence import UnitOfWorkFactory
from satchel.services.files import Files, Landed
from satchel.services.sharing import ShareView, Sharing, ensure_shareable

CLIENT = "satchel files import"  # what the audit trail names as where the files came from
STAGE = "bytes"  # the progress an import reports: bytes stored of all its files

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Source:
    """A file an import brings in: where it is (for messages), the name it gets, its size when it was looked at,
    and its bytes, read only when asked (``read``)."""

    origin: str
    name: str
    size: int
    read: Callable[[], AsyncIterator[bytes]]


@dataclass(frozen=True)
class ShareRequest:
    """The link an import makes of all its files, as the operator asked for it (see ``Sharing.terms``)."""

    expires_in_hours: float | None = None
    max_downloads: int | None = None
    note: str | None = None
    title: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class Imported:
    owner: User
    files: list[StoredFile]
    share: ShareView | None


class ImportRefused(DomainError):
    """Nothing was imported."""

    status = 422


class Imports:
    def __init__(self, uow: UnitOfWorkFactory, files: Files, sharing: Sharing) -> None:
        self._uow = uow
        self._files = files
        self._sharing = sharing

    async def import_files(
        self,
        owner_email: str,
        sources: Sequence[Source],
        *,
        share: ShareRequest | None = None,
        progress: Progress | None = None,
    ) -> Imported:
        """Stream every source into the owner's account, then record them all, and the link with ``share``, in
        one transaction. Everything that can be checked is checked before the first byte (the account, names,
        sizes, the quota for all of them together, the link's terms); on any refusal or failure, none of the
        files stays, neither bytes nor rows. Raises ``ImportRefused`` saying why."""
        try:
            terms, password_hash = await self._link_terms(share, len(sources)) if share else (None, None)
            owner, names = await self._admit(owner_email, sources)
            landed: list[Landed] = []
            try:
                await self._land(owner, sources, names, landed, progress or _silent)
            except BaseException:  # interrupted (Ctrl-C) included: nothing was recorded yet
                await self._discard(landed)
                raise
            try:
                files, view = await self._record(owner, landed, terms, password_hash)
            except Exception:
                # Not when interrupted: the commit may have been under way, and rows without their bytes would be
                # worse than bytes without rows, which `satchel storage verify --fix` removes.
                await self._discard(landed)
                raise
        except DomainError as exc:
            raise ImportRefused(f"{exc.message} Nothing was imported.") from exc
        return Imported(owner, files, view)

    async def _discard(self, landed: list[Landed]) -> None:
        for each in landed:
            await self._files.discard(each.key)

    async def _record(
        self, owner: User, landed: list[Landed], terms: ShareTerms | None, password_hash: str | None
    ) -> tuple[list[StoredFile], ShareView | None]:
        """Every landed file, and the link to them, in one transaction."""
        async with self._uow() as uow:
            try:
                files = [await self._files.add(uow, owner, each, client=CLIENT) for each in landed]
            except QuotaExceeded:
                raise QuotaExceeded(
                    f"{owner.email}'s quota no longer holds these files: other uploads took the room while they "
                    "were read."
                ) from None
            view = None
            if terms is not None:
                view = await self._sharing.add(uow, owner, files, terms, password_hash=password_hash, client=CLIENT)
            await uow.commit()
        return files, view

    async def _link_terms(self, share: ShareRequest, count: int) -> tuple[ShareTerms, str | None]:
        """The link's terms and password hash, checked before a byte is read: one link holds all the files."""
        ensure_shareable(count)
        terms = self._sharing.terms(share.expires_in_hours, share.max_downloads, share.note, title=share.title)
        return terms, await self._sharing.lock_with(share.password)

    async def _admit(self, owner_email: str, sources: Sequence[Source]) -> tuple[User, list[str]]:
        """The owner, and each source's name as it will be stored: what is refused here never reads a byte."""
        if not sources:
            raise InvalidInput("There are no files to import.")
        async with self._uow() as uow:
            owner = await uow.users.by_email(normalize_email(owner_email))
        if owner is None:
            raise NotFound(f"No account for {owner_email}.")
        owner.ensure_active()
        names = []
        for source in sources:
            try:
                names.append(await self._files.admit(owner, source.name, source.size, rate_limited=False))
            except DomainError as exc:
                raise DomainError(f"{source.origin}: {exc.message}") from exc
        total = sum(source.size for source in sources)
        if total > (room := owner.remaining_bytes):
            raise QuotaExceeded(
                f"These {len(sources)} files take {human_size(total)}, more than the {human_size(room)} left of "
                f"{owner.email}'s quota."
            )
        return owner, names

    async def _land(
        self, owner: User, sources: Sequence[Source], names: list[str], landed: list[Landed], progress: Progress
    ) -> None:
        """Each source's bytes into the store, in turn, appended to ``landed`` as they land. Each may take only
        the room the ones before it left: a file that grew since it was looked at cannot overrun the quota."""
        total = sum(source.size for source in sources)
        done = 0

        async def counted(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
            nonlocal done
            async for chunk in chunks:
                done += len(chunk)
                progress(STAGE, done, total)
                yield chunk

        for source, name in zip(sources, names, strict=True):
            room = owner.remaining_bytes - sum(each.size for each in landed)
            try:
                landed.append(await self._files.land(name, counted(source.read()), room=room))
            except DomainError as exc:
                raise DomainError(f"{source.origin}: {exc.message}") from exc
        if done != total:  # a file changed size since it was looked at: the last event still says "all of it"
            progress(STAGE, done, done)


def _silent(stage: str, done: int, total: int) -> None:
    """No one is watching."""
