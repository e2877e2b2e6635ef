"""The REST API (``straits serve``), installed with the ``server`` extra.

``create_app`` is imported lazily, so the plan workers (``straits.server.jobs``, run by
``straits worker``) import without FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from straits.server.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from straits.server.app import create_app

        return create_app
    raise AttributeError(name)
