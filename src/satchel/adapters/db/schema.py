"""Satchel's tables. Alembic migrations under ``migrations/`` create and change them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# One row per `satchel migrate`: which release brought the schema to which revision (factor V).
releases = sa.Table(
    "releases",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("release_id", sa.String(64), nullable=False),
    sa.Column("schema_revision", sa.String(32), nullable=False),
    sa.Column("migrated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("quota_bytes", sa.BigInteger, nullable=False),
    sa.Column("used_bytes", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("session_epoch", sa.Integer, nullable=False, server_default="0"),  # moved on: every session ends
    sa.Column("last_signed_in_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint("used_bytes >= 0", name="used_not_negative"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

files = sa.Table(
    "files",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("owner_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("content_type", sa.String(255), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("storage_key", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("scan_status", sa.String(12), nullable=False, server_default="unscanned"),
    sa.Column("thumbnail_key", sa.String(200)),
    sa.Column("preview_type", sa.String(64)),  # decided from the bytes once; NULL: not looked at yet
    sa.Index("ix_files_owner_created", "owner_id", "created_at"),
)

shares = sa.Table(
    "shares",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("token", sa.String(64), nullable=False, unique=True),
    sa.Column("owner_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("max_downloads", sa.Integer),
    sa.Column("download_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("password_hash", sa.Text),
    sa.Column("note", sa.Text),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("delete_files_when_done", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("allow_previews", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("title", sa.String(200)),  # domain.sharing.MAX_TITLE
    sa.Column("swept_at", sa.DateTime(timezone=True)),  # ended and dealt with by the sweep; kept as history
    sa.Index("ix_shares_unswept", "id", postgresql_where=sa.text("swept_at IS NULL")),
    sa.Index("ix_shares_swept_at", "swept_at", postgresql_where=sa.text("swept_at IS NOT NULL")),
)

share_files = sa.Table(
    "share_files",
    metadata,
    sa.Column("share_id", sa.BigInteger, sa.ForeignKey("shares.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("file_id", sa.String(32), sa.ForeignKey("files.id", ondelete="CASCADE"), primary_key=True, index=True),
    sa.Column("position", sa.Integer, nullable=False),
)

# Resumable uploads (tus): the offset lives here, so any web process can take the next request.
uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("owner_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("length", sa.BigInteger, nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(255)),
    sa.Column("storage_key", sa.String(200), nullable=False, unique=True),
    sa.Column("staging", sa.JSON, nullable=False),  # the object store's own record of the staged bytes
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("file_id", sa.String(32)),  # set in the transaction that records the finished file
    # The upload link it comes in by: only requests through that link reach it (domain.uploads.Upload).
    sa.Column("request_id", sa.BigInteger, sa.ForeignKey("upload_requests.id", ondelete="CASCADE"), index=True),
    sa.CheckConstraint('"offset" >= 0 AND "offset" <= length', name="offset_within_length"),
)

# The transactional outbox: a job is written in the same transaction as the change that causes it.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(50), nullable=False),
    sa.Column("queue", sa.String(20), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("status", sa.String(12), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer, nullable=False, server_default="5"),
    sa.Column("available_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("published_at", sa.DateTime(timezone=True)),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("ix_jobs_status_available", "status", "available_at"),
)

# One row per scheduled sweep slot: however many workers race for a slot, one wins it.
sweeps = sa.Table(
    "sweeps",
    metadata,
    sa.Column("slot", sa.BigInteger, primary_key=True),
    sa.Column("worker", sa.String(100), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("purged", sa.JSON),
)

# Upload requests: links through which anyone uploads into the owner's account, within the request's limits.
upload_requests = sa.Table(
    "upload_requests",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("token", sa.String(64), nullable=False, unique=True),
    sa.Column("owner_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("max_files", sa.Integer),
    sa.Column("max_bytes", sa.BigInteger),
    sa.Column("received_files", sa.Integer, nullable=False, server_default="0"),
    sa.Column("received_bytes", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("password_hash", sa.Text),
    sa.Column("note", sa.Text),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

# Which files came in through which request: recorded in the transaction that records the file.
request_files = sa.Table(
    "request_files",
    metadata,
    sa.Column("request_id", sa.BigInteger, sa.ForeignKey("upload_requests.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("file_id", sa.String(32), sa.ForeignKey("files.id", ondelete="CASCADE"), primary_key=True, index=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# Invitations to open an account: only the hash of the link's token is kept (domain/invitations.py).
invitations = sa.Table(
    "invitations",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("email", sa.String(254), nullable=False, index=True),
    sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("invited_by_email", sa.String(254)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("accepted_at", sa.DateTime(timezone=True)),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

# Password reset links: only the hash of the link's token is kept (domain/password_resets.py).
password_resets = sa.Table(
    "password_resets",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("used_at", sa.DateTime(timezone=True)),
)

# Identities at an OpenID Connect provider linked to accounts, named by issuer and subject (domain/identities.py).
identities = sa.Table(
    "identities",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("issuer", sa.String(500), nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("issuer", "subject"),
)

# The audit trail: one row per recorded action, written in the transaction of the change (domain/audit.py).
# It grows with use: `satchel audit prune --before DATE` deletes what is older (docs/operations.md).
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="SET NULL")),
    sa.Column("actor_email", sa.String(254)),
    sa.Column("action", sa.String(50), nullable=False),
    sa.Column("subject", sa.String(64)),
    sa.Column("client", sa.String(64)),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Index("ix_audit_events_at", "at"),
    sa.Index("ix_audit_events_action_at", "action", "at"),
    sa.Index("ix_audit_events_actor_email_at", "actor_email", "at"),
    sa.Index("ix_audit_events_subject_at", "subject", "at"),
)
