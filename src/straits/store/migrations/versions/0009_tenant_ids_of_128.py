"""Tenant ids of up to 128 characters, as a scenario may name them (``model.types``): the
``tenant`` columns of ``plans``, ``decisions``, ``ledger``, ``tokens`` and ``audit_events`` were
``VARCHAR(100)``, so a scenario whose tenant has 101 to 128 characters planned on the command
line but no token could be made for it (led30). PostgreSQL widens a ``VARCHAR`` in place
(no table rewrite); SQLite does not enforce a length, but its batch mode copies each table so
that the schema says 128 as the models do.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: table -> whether its tenant column may be NULL
TABLES = {"plans": False, "decisions": False, "ledger": False, "tokens": False}
TABLES["audit_events"] = True


def _resize(old: int, new: int) -> None:
    for table, nullable in TABLES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "tenant",
                existing_type=sa.String(length=old),
                type_=sa.String(length=new),
                existing_nullable=nullable,
            )


def upgrade() -> None:
    _resize(100, 128)


def downgrade() -> None:
    _resize(128, 100)
