"""Index ``plans (tenant, started_at)`` and ``plans (status, tenant, created_at)``: a claim
serves tenants in turn (``store.turns.serving_order``): it groups the queued jobs by tenant,
reads each waiting tenant's latest start and takes a tenant's oldest job. Without the indexes
every claim scanned each waiting tenant's whole history of plans and sorted the queue.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_plans_tenant_started", "plans", ["tenant", "started_at"], unique=False)
    op.create_index("ix_plans_queue", "plans", ["status", "tenant", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_plans_queue", table_name="plans")
    op.drop_index("ix_plans_tenant_started", table_name="plans")
