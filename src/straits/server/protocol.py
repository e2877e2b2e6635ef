"""uvicorn's HTTP/1.1 protocol with a deadline for request headers.

uvicorn closes idle keep-alive connections, but a client that connects and then sends nothing,
or sends its headers a byte at a time (slowloris), holds the connection for ever: its keep-alive
timer stops at the first byte and nothing else runs until the headers are complete. This
protocol closes a connection whose request headers are not complete ``header_timeout`` seconds
after it opened or after its previous response. Slow bodies are cut by the app's body timeout
(``BodyLimit``, 408).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderDeadlineProtocol(H11Protocol):
    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before:  # a request's headers are in: its handler runs now
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        waiting = self.cycle is None or self.cycle.response_complete
        if waiting and not self.transport.is_closing():
            self.logger.info(
                "closing a connection whose request headers took over %g s", self.header_timeout
            )
            self.transport.close()


def protocol(header_timeout: float) -> type[Any]:
    """The protocol class, with ``header_timeout`` seconds for the headers."""
    return type(
        "HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": header_timeout}
    )
