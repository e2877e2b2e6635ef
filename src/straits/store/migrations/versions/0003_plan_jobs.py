"""Plan jobs: the plans table becomes a durable queue (leases, heartbeats, attempts, cancel).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

Existing rows keep working: every new column is nullable or has a server default, and a plan
that was ``queued`` or ``running`` before the upgrade has no lease, so the first worker or server
to look requeues it (or fails it with its reason after the attempt limit).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("record", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(sa.Column("rules_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("worker", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index("ix_plans_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_index("ix_plans_status")
        for column in (
            "cancel_requested",
            "started_at",
            "heartbeat_at",
            "lease_until",
            "worker",
            "attempts",
            "rules_digest",
            "record",
        ):
            batch_op.drop_column(column)
