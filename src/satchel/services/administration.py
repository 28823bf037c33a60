"""Administration use cases: accounts and invitations, every user's files and shares, the audit trail, failed jobs.

Each use case that acts for someone takes the acting user and asks ``actor.ensure_admin()`` first, whatever the
route in front of it checked. Removing a file or revoking a link goes the owner's own way (``Files.remove``,
``Sharing.end``), recorded as the administrator's action. ``events`` and ``prune`` serve operators at the
command line, who are trusted as ``satchel jobs retry`` trusts them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from satchel.domain.accounts import SignupPolicy, User, normalize_email
from satchel.domain.audit import ACTIONS, ADMIN_FILE_DELETED, ADMIN_SHARE_REVOKED, AuditEvent, AuditFilter
from satchel.domain.clock import utcnow
from satchel.domain.errors import InvalidInput
from satchel.domain.files import StoredFile
from satchel.domain.invitations import INVITATION_STATUSES, Invitation
from satchel.domain.jobs import FAILED, Job
from satchel.domain.sharing import OPEN_WHILE, Share
from satchel.ports.persistence import FILE_SORTS, OwnedFile, OwnedShare, UnitOfWorkFactory
from satchel.services.accounts import Accounts
from satchel.services.files import Files
from satchel.services.invitations import Invitations, NewInvitation
from satchel.services.jobs import JobsAdmin
from satchel.services.sharing import Sharing
from satchel.services.users import UserAdmin, UserChange

MAX_PAGE = 200
SHARE_STATUSES = ("active", *(term.status for term in OPEN_WHILE))  # what Share.status can say
MAX_SEARCH = 254


def _page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidInput(f"Pages hold 1 to {MAX_PAGE} items.")


def audit_filter(
    *,
    action: str | None = None,
    email: str | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AuditFilter:
    """The filter a person asked for, checked: a known action, an address as accounts store them, times with
    a time zone. Empty fields filter nothing; a range that ends where (or before) it starts holds nothing."""
    if action and action not in ACTIONS:
        raise InvalidInput(f"Filter by one of the actions: {', '.join(ACTIONS)}.")
    for when in (since, until):
        if when is not None and when.tzinfo is None:
            raise InvalidInput("Give times with their time zone (…Z or +01:00).")
    return AuditFilter(
        action=action or None,
        actor_email=_email(email),
        subject=subject.strip()[:64] if subject and subject.strip() else None,
        since=since,
        until=until,
    )


def _email(email: str | None) -> str | None:
    if not email or not email.strip():
        return None
    try:
        return normalize_email(email)
    except InvalidInput:
        return email.strip().lower()[:MAX_SEARCH]  # matches nothing, as a search for it should


@dataclass(frozen=True)
class SignupTerms:
    """Who may open an account and what an invited one gets: configuration (factor III), shown, never changed."""

    policy: SignupPolicy
    invitation_days: int
    default_quota_bytes: int


@dataclass(frozen=True)
class People:
    """The use cases the Users area delegates to, and the terms of sign-up it shows."""

    accounts: Accounts
    users: UserAdmin
    invitations: Invitations
    terms: SignupTerms


class Administration:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        files: Files,
        sharing: Sharing,
        jobs: JobsAdmin,
        people: People,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._uow = uow
        self._files = files
        self._sharing = sharing
        self._jobs = jobs
        self._people = people
        self._clock = clock

    # --- users

    def signup_terms(self, actor: User) -> SignupTerms:
        actor.ensure_admin()
        return self._people.terms

    async def users(
        self, actor: User, *, search: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[User], int]:
        actor.ensure_admin()
        _page(limit, offset)
        return await self._people.users.search(search=search, limit=limit, offset=offset)

    async def user(self, actor: User, user_id: int) -> User:
        actor.ensure_admin()
        return await self._people.users.get(user_id)

    async def create_user(
        self,
        actor: User,
        email: str,
        password: str,
        *,
        is_admin: bool = False,
        quota_bytes: int | None = None,
        client: str | None = None,
    ) -> User:
        """Open an account with a password the administrator chose, whatever the sign-up policy."""
        actor.ensure_admin()
        return await self._people.accounts.create_user(
            email, password, is_admin=is_admin, quota_bytes=quota_bytes, actor=actor, client=client
        )

    async def change_user(self, actor: User, user_id: int, change: UserChange, *, client: str | None = None) -> User:
        """Disable or enable, make administrator or not, set the quota: never disabling or demoting oneself."""
        actor.ensure_admin()
        return await self._people.users.change(user_id, change, actor=actor, client=client)

    # --- invitations

    async def invitations(
        self, actor: User, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Invitation], int]:
        actor.ensure_admin()
        if status and status not in INVITATION_STATUSES:
            raise InvalidInput(f"Filter by one of: {', '.join(INVITATION_STATUSES)}.")
        _page(limit, offset)
        return await self._people.invitations.list(status=status or None, limit=limit, offset=offset)

    async def invite(
        self, actor: User, email: str, *, is_admin: bool = False, client: str | None = None
    ) -> NewInvitation:
        actor.ensure_admin()
        return await self._people.invitations.invite(email, is_admin=is_admin, actor=actor, client=client)

    async def resend_invitation(self, actor: User, invitation_id: int, *, client: str | None = None) -> NewInvitation:
        actor.ensure_admin()
        return await self._people.invitations.resend(invitation_id, actor=actor, client=client)

    async def revoke_invitation(self, actor: User, invitation_id: int, *, client: str | None = None) -> Invitation:
        actor.ensure_admin()
        return await self._people.invitations.revoke(invitation_id, actor=actor, client=client)

    # --- the audit trail

    async def audit(
        self, actor: User, where: AuditFilter, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[AuditEvent], int]:
        actor.ensure_admin()
        return await self.events(where, limit=limit, offset=offset)

    async def events(self, where: AuditFilter, *, limit: int = 50, offset: int = 0) -> tuple[list[AuditEvent], int]:
        """A page of the trail, newest first (operators at the command line)."""
        _page(limit, offset)
        async with self._uow() as uow:
            return await uow.audit.list(where, limit=limit, offset=offset)

    async def prune(self, before: datetime) -> int:
        """Delete the events older than ``before`` (operators at the command line); returns how many."""
        if before.tzinfo is None:
            raise InvalidInput("Give the date with its time zone.")
        async with self._uow() as uow:
            pruned = await uow.audit.prune(before)
            await uow.commit()
        return pruned

    # --- files

    async def files(
        self, actor: User, *, sort: str = "-created", search: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[OwnedFile], int]:
        actor.ensure_admin()
        if sort not in FILE_SORTS:
            raise InvalidInput(f"Sort by one of: {', '.join(FILE_SORTS)}.")
        _page(limit, offset)
        search = (search or "").strip()[:MAX_SEARCH] or None
        async with self._uow() as uow:
            return await uow.files.list_all(sort=sort, search=search, limit=limit, offset=offset)

    async def delete_file(self, actor: User, file_id: str, *, client: str | None = None) -> StoredFile:
        """Delete anyone's file as its owner would (record, quota, bytes), recorded as ``admin.file_deleted``."""
        actor.ensure_admin()
        return await self._files.remove(actor, file_id, action=ADMIN_FILE_DELETED, client=client, any_owner=True)

    # --- shares

    async def shares(
        self, actor: User, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[OwnedShare], int]:
        actor.ensure_admin()
        if status and status not in SHARE_STATUSES:
            raise InvalidInput(f"Filter by one of: {', '.join(SHARE_STATUSES)}.")
        _page(limit, offset)
        async with self._uow() as uow:
            return await uow.shares.list_all(status=status or None, now=self._clock(), limit=limit, offset=offset)

    async def revoke_share(self, actor: User, share_id: int, *, client: str | None = None) -> Share:
        """Revoke anyone's link as its owner would, recorded as ``admin.share_revoked``."""
        actor.ensure_admin()
        return await self._sharing.end(actor, share_id, action=ADMIN_SHARE_REVOKED, client=client, any_owner=True)

    # --- jobs

    async def failed_jobs(self, actor: User, *, limit: int = 100) -> list[Job]:
        """Jobs parked after their last attempt failed, newest first."""
        actor.ensure_admin()
        _page(limit, 0)
        return await self._jobs.recent(status=FAILED, limit=limit)

    async def retry_job(self, actor: User, job_id: str, *, client: str | None = None) -> None:
        actor.ensure_admin()
        await self._jobs.retry(job_id, actor=actor, client=client)
