"""Alembic environment: Straits always hands it an open connection (``Store.migrate``)."""

from __future__ import annotations

from alembic import context

from straits.store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through straits.store.Store, which passes a connection")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
