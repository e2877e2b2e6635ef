"""Plans finished before revision 0003 without a ledger entry were submitted with
``record=false``: say so (0003 gave every existing plan ``record = true``), so that a finished
plan marked for recording without an entry means only one thing: it was detached from its
entry (``records.refuse_detached``).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    plans = sa.table(
        "plans",
        sa.column("record", sa.Boolean()),
        sa.column("ledger_seq", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("attempts", sa.Integer()),
    )
    # before 0003 a plan ran once, in the server that took it: attempts stayed 0
    op.execute(
        plans.update()
        .where(plans.c.ledger_seq.is_(None), plans.c.status == "done", plans.c.attempts == 0)
        .values(record=False)
    )


def downgrade() -> None:
    pass
