"""Index ``decisions.ledger_seq`` and ``plans.ledger_seq``: the full verify joins both tables to
the ledger on them and groups the decisions by them (``store.integrity``); without an index
SQLite sorts or builds a temporary index over every row on each verify.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_decisions_ledger_seq", "decisions", ["ledger_seq"], unique=False)
    op.create_index("ix_plans_ledger_seq", "plans", ["ledger_seq"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_plans_ledger_seq", table_name="plans")
    op.drop_index("ix_decisions_ledger_seq", table_name="decisions")
