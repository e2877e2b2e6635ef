"""``plans.idempotency_key``: the key a client sent with ``POST /v1/plans`` (the
``Idempotency-Key`` header) or the console's form, unique per tenant, so a submission repeated
(a retry after a lost answer, a form posted twice to two server processes) finds the plan the
first one queued instead of queuing and recording a second.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=200), nullable=True))
        batch_op.create_index("ux_plans_idempotency", ["tenant", "idempotency_key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_index("ux_plans_idempotency")
        batch_op.drop_column("idempotency_key")
