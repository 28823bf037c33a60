"""Resumable uploads: how far each one got, where its bytes are staged, when it is abandoned.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner_id", sa.BigInteger, nullable=False),
        sa.Column("length", sa.BigInteger, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(255)),
        sa.Column("storage_key", sa.String(200), nullable=False),
        sa.Column("staging", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("file_id", sa.String(32)),
        sa.PrimaryKeyConstraint("id", name="pk_uploads"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_uploads_owner_id_users", ondelete="CASCADE"),
        sa.UniqueConstraint("storage_key", name="uq_uploads_storage_key"),
        sa.CheckConstraint('"offset" >= 0 AND "offset" <= length', name="ck_uploads_offset_within_length"),
    )
    op.create_index("ix_uploads_owner_id", "uploads", ["owner_id"])
    op.create_index("ix_uploads_expires_at", "uploads", ["expires_at"])


def downgrade() -> None:
    op.drop_table("uploads")
