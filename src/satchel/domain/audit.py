"""The audit trail: who did what to which file, share or account, when and from where.

An event is written in the transaction of the change it records (no event for a change that rolled back, no
change without its event), then logged as ``audit.<action>`` once that transaction has committed. Its details
are small facts (a file's name and size, a share's files): never a token, a link or a password.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from satchel.domain.accounts import User

# Every action the trail records, by the name its events and log lines carry.
FILE_UPLOADED: Final = "file.uploaded"
FILE_DELETED: Final = "file.deleted"
SHARE_CREATED: Final = "share.created"
SHARE_REVOKED: Final = "share.revoked"
SHARE_DOWNLOADED: Final = "share.downloaded"
SIGNED_IN: Final = "account.signed_in"
SIGN_IN_FAILED: Final = "account.sign_in_failed"
SIGNED_UP: Final = "account.signed_up"
INVITATION_ACCEPTED: Final = "account.invitation_accepted"
PASSWORD_RESET_REQUESTED: Final = "account.password_reset_requested"  # noqa: S105 (an action name)
PASSWORD_RESET: Final = "account.password_reset"  # noqa: S105 (an action name)
IDENTITY_LINKED: Final = "account.identity_linked"
ADMIN_FILE_DELETED: Final = "admin.file_deleted"
ADMIN_SHARE_REVOKED: Final = "admin.share_revoked"
ADMIN_USER_CREATED: Final = "admin.user_created"
ADMIN_USER_INVITED: Final = "admin.user_invited"
ADMIN_INVITATION_RESENT: Final = "admin.invitation_resent"
ADMIN_INVITATION_REVOKED: Final = "admin.invitation_revoked"
ADMIN_USER_DISABLED: Final = "admin.user_disabled"
ADMIN_USER_ENABLED: Final = "admin.user_enabled"
ADMIN_GRANTED: Final = "admin.admin_granted"
ADMIN_REVOKED: Final = "admin.admin_revoked"
ADMIN_QUOTA_CHANGED: Final = "admin.quota_changed"
JOB_RETRIED: Final = "job.retried"
ACTIONS: Final[tuple[str, ...]] = (
    FILE_UPLOADED,
    FILE_DELETED,
    SHARE_CREATED,
    SHARE_REVOKED,
    SHARE_DOWNLOADED,
    SIGNED_IN,
    SIGN_IN_FAILED,
    SIGNED_UP,
    INVITATION_ACCEPTED,
    PASSWORD_RESET_REQUESTED,
    PASSWORD_RESET,
    IDENTITY_LINKED,
    ADMIN_FILE_DELETED,
    ADMIN_SHARE_REVOKED,
    ADMIN_USER_CREATED,
    ADMIN_USER_INVITED,
    ADMIN_INVITATION_RESENT,
    ADMIN_INVITATION_REVOKED,
    ADMIN_USER_DISABLED,
    ADMIN_USER_ENABLED,
    ADMIN_GRANTED,
    ADMIN_REVOKED,
    ADMIN_QUOTA_CHANGED,
    JOB_RETRIED,
)
COMMAND_LINE: Final = "command line"  # the client of a change an operator made with a satchel command
MAX_CLIENT = 64
MAX_SUBJECT = 64  # the longest is a job's or a file's: 'file:' and 32 hex digits

log = logging.getLogger("satchel.audit")


@dataclass
class AuditEvent:
    """One thing that happened. ``actor_email`` is the actor's address at the time: it outlives the account.
    ``subject`` is what it happened to, by kind and id: ``file:<id>``, ``share:<id>``, ``user:<id>``, ``job:<id>``,
    ``invitation:<id>``."""

    action: str
    at: datetime
    actor_id: int | None = None
    actor_email: str | None = None
    subject: str | None = None
    client: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: int = 0  # given by the trail when recorded

    @classmethod
    def of(
        cls,
        action: str,
        at: datetime,
        *,
        actor: User | None = None,
        email: str | None = None,
        subject: str | None = None,
        client: str | None = None,
        **details: Any,
    ) -> AuditEvent:
        """An event of ``action`` by ``actor`` (or by whoever gave ``email``, signed in or not)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        return cls(
            action=action,
            at=at,
            actor_id=actor.id if actor else None,
            actor_email=actor.email if actor else email,
            subject=None if subject is None else subject[:MAX_SUBJECT],
            client=client[:MAX_CLIENT] if client else None,
            details=details,
        )


@dataclass(frozen=True)
class AuditFilter:
    """Which events a listing shows: each given field narrows it; ``since`` is inclusive, ``until`` is not."""

    action: str | None = None
    actor_email: str | None = None
    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, event: AuditEvent) -> bool:
        return (
            (self.action is None or event.action == self.action)
            and (self.actor_email is None or event.actor_email == self.actor_email)
            and (self.subject is None or event.subject == self.subject)
            and (self.since is None or event.at >= self.since)
            and (self.until is None or event.at < self.until)
        )


def announce(events: Iterable[AuditEvent]) -> None:
    """Log events that were committed, one ``audit.<action>`` line each (factor XI: the stream has them too)."""
    for event in events:
        fields = {
            "audit_id": event.id,
            "actor_id": event.actor_id,
            "actor_email": event.actor_email,
            "subject": event.subject,
            "client": event.client,
            **{f"detail_{k}": v for k, v in event.details.items()},
        }
        log.info(f"audit.{event.action}", extra=fields)
