"""Record which release ran each migration.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("release_id", sa.String(64), nullable=False),
        sa.Column("schema_revision", sa.String(32), nullable=False),
        sa.Column("migrated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_releases"),
    )


def downgrade() -> None:
    op.drop_table("releases")
