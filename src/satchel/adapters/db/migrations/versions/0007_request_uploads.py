"""Resumable uploads through upload links: an upload remembers the link it comes in by.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("uploads", sa.Column("request_id", sa.BigInteger, nullable=True))
    op.create_foreign_key(
        "fk_uploads_request_id_upload_requests",
        "uploads",
        "upload_requests",
        ["request_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_index("ix_uploads_request_id", "uploads", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_uploads_request_id", table_name="uploads")
    op.drop_constraint("fk_uploads_request_id_upload_requests", "uploads", type_="foreignkey")
    op.drop_column("uploads", "request_id")
