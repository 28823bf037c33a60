"""Accounts, API tokens, files and shares.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("quota_bytes", sa.BigInteger, nullable=False),
        sa.Column("used_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
        sa.CheckConstraint("used_bytes >= 0", name="ck_users_used_not_negative"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("last_used_at", TZ),
        sa.Column("revoked_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_api_tokens_user_id_users", ondelete="CASCADE"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "files",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_files"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_files_owner_id_users", ondelete="CASCADE"),
        sa.UniqueConstraint("storage_key", name="uq_files_storage_key"),
    )
    op.create_index("ix_files_owner_created", "files", ["owner_id", "created_at"])
    op.create_table(
        "shares",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("owner_id", sa.BigInteger, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("max_downloads", sa.Integer),
        sa.Column("download_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("password_hash", sa.Text),
        sa.Column("note", sa.Text),
        sa.Column("revoked_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_shares"),
        sa.UniqueConstraint("token", name="uq_shares_token"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_shares_owner_id_users", ondelete="CASCADE"),
    )
    op.create_index("ix_shares_owner_id", "shares", ["owner_id"])
    op.create_table(
        "share_files",
        sa.Column("share_id", sa.BigInteger, nullable=False),
        sa.Column("file_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("share_id", "file_id", name="pk_share_files"),
        sa.ForeignKeyConstraint(["share_id"], ["shares.id"], name="fk_share_files_share_id_shares", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name="fk_share_files_file_id_files", ondelete="CASCADE"),
    )
    op.create_index("ix_share_files_file_id", "share_files", ["file_id"])


def downgrade() -> None:
    for table in ("share_files", "shares", "files", "api_tokens", "users"):
        op.drop_table(table)
