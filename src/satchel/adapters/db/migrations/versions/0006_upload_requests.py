"""Upload requests: links through which anyone uploads files into the owner's account, and what came in.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "upload_requests",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("owner_id", sa.BigInteger, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("max_files", sa.Integer),
        sa.Column("max_bytes", sa.BigInteger),
        sa.Column("received_files", sa.Integer, nullable=False, server_default="0"),
        sa.Column("received_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("password_hash", sa.Text),
        sa.Column("note", sa.Text),
        sa.Column("revoked_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_upload_requests"),
        sa.UniqueConstraint("token", name="uq_upload_requests_token"),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name="fk_upload_requests_owner_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_upload_requests_owner_id", "upload_requests", ["owner_id"])
    op.create_table(
        "request_files",
        sa.Column("request_id", sa.BigInteger, nullable=False),
        sa.Column("file_id", sa.String(32), nullable=False),
        sa.Column("received_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("request_id", "file_id", name="pk_request_files"),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["upload_requests.id"],
            name="fk_request_files_request_id_upload_requests",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name="fk_request_files_file_id_files", ondelete="CASCADE"),
    )
    op.create_index("ix_request_files_file_id", "request_files", ["file_id"])


def downgrade() -> None:
    op.drop_table("request_files")
    op.drop_table("upload_requests")
