"""HEAD for every route that answers GET (RFC 9110 9.3.2: the same answer without its body).

FastAPI registers a route for the methods it names, so ``HEAD /ui/`` (a monitor's or ``curl
-I``'s check) was a 405 while ``GET /ui/`` was a 200, and each probe route had to name HEAD
itself. This middleware answers HEAD as GET, headers included (``Content-Length`` is GET's),
and sends no body; a path without GET still answers 405.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

# the ASGI types the server's middlewares share (BodyLimit in app.py uses them too)
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headless(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # nothing of a streamed body is sent; its last message ends it
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headless)
