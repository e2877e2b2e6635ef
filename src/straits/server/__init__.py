"""The REST API (``straits serve``), installed with the ``server`` extra."""

from straits.server.app import create_app

__all__ = ["create_app"]
