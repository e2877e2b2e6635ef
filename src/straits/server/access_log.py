"""The server's access log keeps tokens out: a token given in the query string (``?token=``,
the SkyPilot admission hook's documented way to authenticate, since SkyPilot sends no headers)
was written verbatim into uvicorn's access log, where whoever reads the logs could use it
(atk65). The value of every ``token`` parameter is replaced with ``REDACTED`` in the request
line uvicorn logs; nothing else of the line changes."""

from __future__ import annotations

import logging
import re

#: a ``token`` query parameter's value (``?token=`` or ``&token=``, in any case)
_TOKEN = re.compile(r"([?&]token=)[^&#\s]*", re.IGNORECASE)
REDACTED = "REDACTED"


def redact(path: str) -> str:
    """``path`` (a request target) with each ``token`` parameter's value redacted."""
    return _TOKEN.sub(rf"\g<1>{REDACTED}", path)


class RedactTokens(logging.Filter):
    """Redacts tokens in uvicorn's access records: ``(client, method, target, version,
    status)``; a record of another shape passes as it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact(args[2]), *args[3:])
        return True


def install() -> None:
    """Redact tokens in the ``uvicorn.access`` logger (after uvicorn configured its logging)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
