"""Invitations by email, and what the admin console needs of accounts: a session epoch, the last sign-in.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Both columns have defaults PostgreSQL fills without rewriting the table: the upgrade takes no time.
    op.add_column("users", sa.Column("session_epoch", sa.Integer, nullable=False, server_default="0"))
    op.add_column("users", sa.Column("last_signed_in_at", TZ))
    op.create_table(
        "invitations",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("invited_by_email", sa.String(254)),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("accepted_at", TZ),
        sa.Column("revoked_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_invitations"),
        sa.UniqueConstraint("token_hash", name="uq_invitations_token_hash"),
    )
    op.create_index("ix_invitations_email", "invitations", ["email"])


def downgrade() -> None:
    op.drop_table("invitations")
    op.drop_column("users", "last_signed_in_at")
    op.drop_column("users", "session_epoch")
