"""Share history: an ended link's record stays after the sweep, so the link keeps saying why it ended.

The sweep no longer deletes an ended share: it deals with its files and sets ``swept_at``; the record goes once
``SATCHEL_SHARE_HISTORY_DAYS`` have passed since. Two partial indexes keep both of the sweep's questions cheap
however much history there is: which ended shares it has not dealt with yet, and which records are old enough.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: adding it rewrites no row. Every share there is has not been swept yet (the sweep
    # deleted what it found until now), so NULL is the truth for each of them.
    op.add_column("shares", sa.Column("swept_at", sa.DateTime(timezone=True)))
    op.create_index("ix_shares_unswept", "shares", ["id"], postgresql_where=sa.text("swept_at IS NULL"))
    op.create_index("ix_shares_swept_at", "shares", ["swept_at"], postgresql_where=sa.text("swept_at IS NOT NULL"))


def downgrade() -> None:
    # The code before this revision deletes ended shares itself: the kept records go at its first sweep.
    op.drop_index("ix_shares_swept_at", table_name="shares")
    op.drop_index("ix_shares_unswept", table_name="shares")
    op.drop_column("shares", "swept_at")
