"""``decisions.idempotency_key``: the key a client sent with ``POST /v1/check?record=true`` (the
``Idempotency-Key`` header) or ``straits check --record --request-id``, unique per tenant, so a
recording repeated (a retry after a crash or a lost answer) answers the decision the first one
recorded instead of appending a second ledger entry.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=200), nullable=True))
        batch_op.create_index(
            "ux_decisions_idempotency", ["tenant", "idempotency_key"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_index("ux_decisions_idempotency")
        batch_op.drop_column("idempotency_key")
