"""The ledger as a transparency log: per-tenant numbers and salts, the Merkle tree, checkpoints.

Adds ``ledger.tenant_seq`` and ``ledger.salt``, the tables ``ledger_nodes`` (the hash of every
perfect subtree of the RFC 6962 tree over the entries) and ``ledger_checkpoints`` (signed
checkpoints), and backfills them from the existing chain in one pass: entries recorded before
this revision get their tenant's numbers in order and an empty salt, and the tree is built over
them, so an existing ledger verifies (chain and tree) right after the upgrade, and heads
published from its chain (``SEQ:HASH``) still verify.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table("ledger", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tenant_seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("salt", sa.String(length=32), nullable=True))
    op.create_table(
        "ledger_nodes",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "ledger_checkpoints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ledger_checkpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_checkpoints_size"), ["size"], unique=False)

    backfill(op.get_bind())

    with op.batch_alter_table("ledger", schema=None) as batch_op:
        batch_op.alter_column("tenant_seq", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("salt", existing_type=sa.String(length=32), nullable=False)
        batch_op.create_index("ix_ledger_tenant_seq", ["tenant", "tenant_seq"], unique=True)


def backfill(conn: sa.Connection) -> int:
    """Number every existing entry within its tenant, salt it with '' and build the tree over
    the entries in order (constant memory; nodes written in batches). Returns the entries."""
    from straits.store.ledger import leaf_data
    from straits.store.merkle import TreeBuilder, leaf_hash

    ledger = sa.table(
        "ledger",
        sa.column("seq", sa.Integer),
        sa.column("recorded_at"),
        sa.column("tenant"),
        sa.column("actor"),
        sa.column("kind"),
        sa.column("body"),
        sa.column("tenant_seq", sa.Integer),
        sa.column("salt"),
    )
    nodes = sa.table(
        "ledger_nodes",
        sa.column("level", sa.Integer),
        sa.column("idx", sa.BigInteger),
        sa.column("hash"),
    )
    update = (
        sa.update(ledger)
        .where(ledger.c.seq == sa.bindparam("b_seq"))
        .values(tenant_seq=sa.bindparam("b_tseq"), salt="")
    )
    counts: dict[str, int] = {}
    builder = TreeBuilder()
    pending_nodes: list[dict[str, object]] = []
    pending_rows: list[dict[str, object]] = []
    after, expected = 0, 1

    def flush() -> None:
        if pending_rows:
            conn.execute(update, pending_rows)
            pending_rows.clear()
        if pending_nodes:
            conn.execute(sa.insert(nodes), pending_nodes)
            pending_nodes.clear()

    while True:
        rows = conn.execute(
            sa.select(
                ledger.c.seq,
                ledger.c.recorded_at,
                ledger.c.tenant,
                ledger.c.actor,
                ledger.c.kind,
                ledger.c.body,
            )
            .where(ledger.c.seq > after)
            .order_by(ledger.c.seq)
            .limit(BATCH)
        ).all()
        for seq, recorded_at, tenant, actor, kind, body in rows:
            # past a gap (a deleted entry) the tree stops: verification names the missing
            # entry, as it did before the upgrade; later entries still get their numbers
            tseq = counts[tenant] = counts.get(tenant, 0) + 1
            pending_rows.append({"b_seq": seq, "b_tseq": tseq})
            if seq == expected:
                leaf = leaf_hash(leaf_data(seq, tseq, recorded_at, tenant, actor, kind, body, ""))
                pending_nodes.extend(
                    {"level": lv, "idx": ix, "hash": h.hex()} for lv, ix, h in builder.add(leaf)
                )
                expected += 1
        flush()
        if len(rows) < BATCH:
            return builder.size
        after = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_tenant_seq")
        batch_op.drop_column("salt")
        batch_op.drop_column("tenant_seq")
    with op.batch_alter_table("ledger_checkpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_checkpoints_size"))
    op.drop_table("ledger_checkpoints")
    op.drop_table("ledger_nodes")
