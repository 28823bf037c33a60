"""The job outbox, scan state and thumbnails of files, sweep slots, shares that clean up after themselves.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("queue", sa.String(20), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(12), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.Integer, nullable=False, server_default="5"),
        sa.Column("available_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", TZ),
        sa.Column("started_at", TZ),
        sa.Column("finished_at", TZ),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    op.create_index("ix_jobs_status_available", "jobs", ["status", "available_at"])
    op.create_table(
        "sweeps",
        sa.Column("slot", sa.BigInteger, nullable=False),
        sa.Column("worker", sa.String(100), nullable=False),
        sa.Column("started_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", TZ),
        sa.Column("purged", sa.JSON),
        sa.PrimaryKeyConstraint("slot", name="pk_sweeps"),
    )
    op.add_column("files", sa.Column("scan_status", sa.String(12), nullable=False, server_default="unscanned"))
    op.add_column("files", sa.Column("thumbnail_key", sa.String(200)))
    op.add_column("shares", sa.Column("delete_files_when_done", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("shares", "delete_files_when_done")
    op.drop_column("files", "thumbnail_key")
    op.drop_column("files", "scan_status")
    op.drop_table("sweeps")
    op.drop_table("jobs")
