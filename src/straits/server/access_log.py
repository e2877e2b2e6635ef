"""The server's access log keeps tokens out: a token given in the query string (``?token=``,
the SkyPilot admission hook's documented way to authenticate, since SkyPilot sends no headers)
was written verbatim into uvicorn's access log, where whoever reads the logs could use it
(atk65). The value of every ``token`` parameter is replaced with ``REDACTED`` in the request
line uvicorn logs; nothing else of the line changes."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

#: a query parameter (``?name=value`` or ``&name=value``)
_PARAM = re.compile(r"([?&])([^=&#\s]*)(=)([^&#\s]*)")
REDACTED = "REDACTED"


def _is_token(name: str) -> bool:
    """Whether a parameter's name, as the server decodes it, is ``token`` (in any case):
    ``?%74oken=st_...`` authenticated as ``?token=`` does and was logged verbatim."""
    return unquote_plus(name).strip().lower() == "token"


def redact(path: str) -> str:
    """``path`` (a request target) with each ``token`` parameter's value redacted."""
    return _PARAM.sub(
        lambda m: m.group(1) + m.group(2) + "=" + REDACTED if _is_token(m.group(2)) else m[0],
        path,
    )


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
