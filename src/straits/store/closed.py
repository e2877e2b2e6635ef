"""What a closed :class:`~straits.store.Store` answers: a :class:`StoreError` for every use.
``close()`` disposed of the engine's pool only, and SQLAlchemy opens a new one on the next
use: a store closed by its owner went on reading and writing its database without a word
(pyapi30)."""

from __future__ import annotations

from typing import Any, NoReturn

from sqlalchemy.orm import Session, sessionmaker

from straits.errors import StoreError


class ClosedSessions(sessionmaker[Session]):
    """The sessions of a closed store: none."""

    def __init__(self, shown: str) -> None:
        super().__init__()
        self.shown = shown

    def __call__(self, **local_kw: Any) -> NoReturn:
        raise StoreError(
            f"the store of {self.shown} was closed: open a new Store to use the database again"
        )
