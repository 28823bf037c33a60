"""Previews: the type a file is previewed as, decided from its bytes; whether a limited link shows previews.

Snippets need nothing more: a snippet is a file whose bytes are UTF-8 text.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for the files already stored: their type is decided from their bytes the first time one is shown.
    op.add_column("files", sa.Column("preview_type", sa.String(64)))
    # Off for existing links: a link with a download limit showed nothing but downloads until now.
    op.add_column("shares", sa.Column("allow_previews", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("shares", "allow_previews")
    op.drop_column("files", "preview_type")
