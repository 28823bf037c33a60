"""Share titles: an optional heading for a link, shown to its recipients, in its invitations and in listings.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: adding it rewrites no row, so it takes no longer on a big table than on an empty one.
    op.add_column("shares", sa.Column("title", sa.String(200)))


def downgrade() -> None:
    op.drop_column("shares", "title")
