"""The request target and ``Host`` (RFC 9112 3.2), read before any route.

uvicorn hands the app the request target as it came. A target in absolute-form (``GET
http://host:8000/healthz``, which a server MUST accept: RFC 9112 3.2.2, and which a client
talking through a forward proxy sends) was taken for a path, ``/http://host:8000/healthz``, and
answered 404 on every route; ``OPTIONS *`` (asterisk-form, RFC 9112 3.2.4) was a 404 too, and
a ``Host`` header that is no host (``Host: a b``, ``Host: evil.example/../x?``, bytes that are
not ASCII) was served, though a server MUST answer it with 400 (RFC 9112 3.2). This middleware:

* rewrites an absolute-form target (``http`` or ``https``, any host: this server has one site)
  to its path, and takes the target's authority as ``Host``, ignoring the header (RFC 9112
  3.2.2); the scheme stays the connection's. An authority that is empty, holds userinfo
  (``user@host``) or is no host[:port] is a 400;
* answers ``OPTIONS *`` (the server in general) 200 with no body, and any other method with
  the ``*`` target 400;
* refuses any other target that is not a path (``GET host:8000``, ``CONNECT host:443``, ``GET
  ftp://x/``) with 400, and a ``Host`` header that is no host[:port], or given twice, with 400.

Refusals are problem+json (``path`` names ``Host`` or the request target), or the console's
error page under ``/ui``.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from starlette.responses import Response

from straits.server.head import ASGIApp, Message, Receive, Scope, Send
from straits.server.problems import refusal

#: an absolute-form target (its path and query already split off by the server): scheme,
#: authority, path
_ABSOLUTE = re.compile(rb"(https?)://([^/]*)(/.*)?\Z", re.IGNORECASE | re.DOTALL)

#: uri-host [":" port] (RFC 3986 3.2.2: an IPv6 address, with a zone (RFC 6874), or an
#: IPvFuture in brackets, or a reg-name, which covers IPv4 addresses); an empty value is allowed
#: in the header (RFC 9112 3.2). '[zz]' is no IP literal: Python's urlsplit raises on it
#: (starlette's request.url parses the Host)
_HOST = re.compile(
    rb"(?:\[(?:[0-9A-Fa-f:.]+(?:%25[A-Za-z0-9._~-]+)?|v[0-9A-Fa-f]+\.[A-Za-z0-9._~!$&'()*+,;=:-]+)\]"
    rb"|(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?\Z"
)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


class RequestTarget:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = scope.get("raw_path") or str(scope.get("path", "")).encode("utf-8")
        headers = list(scope.get("headers") or [])
        if raw.startswith(b"/"):
            hosts = [value for name, value in headers if name == b"host"]
            if len(hosts) > 1 or (hosts and not _HOST.match(hosts[0])):
                await self._refuse(scope, send, "the Host header is not one host[:port]", "Host")
                return
            await self.app(scope, receive, send)
            return
        if raw == b"*":
            if scope.get("method") == "OPTIONS":  # the server in general: it is here
                await Response(status_code=200)(scope, _no_receive, send)
            else:
                await self._refuse(
                    scope, send, "the target '*' is for OPTIONS only", "request target"
                )
            return
        absolute = _ABSOLUTE.match(raw)
        if absolute is None:
            await self._refuse(
                scope,
                send,
                "the request target is neither a path nor an http(s) URL",
                "request target",
            )
            return
        authority, path = absolute[2], absolute[3] or b"/"
        if not authority or b"@" in authority or not _HOST.match(authority):
            await self._refuse(
                scope,
                send,
                "the request target's authority is not one host[:port]",
                "request target",
            )
            return
        # RFC 9112 3.2.2: the target's authority is the host; the Host header is ignored
        headers = [(name, value) for name, value in headers if name != b"host"]
        await self.app(
            {
                **scope,
                "raw_path": path,
                "path": unquote(path.decode("latin-1")),
                "headers": [(b"host", authority), *headers],
            },
            receive,
            send,
        )

    async def _refuse(self, scope: Scope, send: Send, detail: str, path: str) -> None:
        await refusal(
            scope,
            400,
            detail,
            path=path,
            expected="a path (/...), an http(s) URL, or * with OPTIONS; Host: host[:port]",
        )(scope, _no_receive, send)
