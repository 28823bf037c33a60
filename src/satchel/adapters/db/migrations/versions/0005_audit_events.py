"""The audit trail: who did what to which file, share or account, when and from where.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor_id", sa.BigInteger),
        sa.Column("actor_email", sa.String(254)),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("subject", sa.String(64)),
        sa.Column("client", sa.String(64)),
        sa.Column("details", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name="fk_audit_events_actor_id_users", ondelete="SET NULL"),
    )
    # Newest first, and each filter of the console within a time range.
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_action_at", "audit_events", ["action", "at"])
    op.create_index("ix_audit_events_actor_email_at", "audit_events", ["actor_email", "at"])
    op.create_index("ix_audit_events_subject_at", "audit_events", ["subject", "at"])


def downgrade() -> None:
    op.drop_table("audit_events")
