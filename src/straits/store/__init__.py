"""Persistence: scenarios, plans, decisions, tokens, refusals and the hash-chained ledger.

SQLAlchemy 2 models with Alembic migrations; SQLite (``./straits.db``) unless
``STRAITS_DATABASE_URL`` names another database (PostgreSQL: ``postgresql+psycopg://...``).
"""

from straits.store.db import Store, database_url
from straits.store.ledger import Entry, Verification, verify

__all__ = ["Entry", "Store", "Verification", "database_url", "verify"]
