"""rev51b: ``holding.signals_held`` gives back every stop signal that came while it held them,
to the handler each had, and leaves an ignored one ignored and no handler swapped for good."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from straits.holding import HELD, signals_held


@pytest.fixture
def handlers() -> Iterator[list[int]]:
    """Python handlers on the held signals that record what they were given."""
    got: list[int] = []
    before = {sig: signal.getsignal(sig) for sig in HELD}
    for sig in HELD:
        signal.signal(sig, lambda signum, _frame: got.append(signum))
    yield got
    for sig, old in before.items():
        signal.signal(sig, old)


@pytest.mark.parametrize(
    ("sent", "ignored", "delivered"),
    [
        ([signal.SIGTERM], (), [signal.SIGTERM]),
        ([signal.SIGHUP, signal.SIGTERM], (), [signal.SIGHUP, signal.SIGTERM]),
        ([signal.SIGINT, signal.SIGTERM, signal.SIGINT], (), [signal.SIGINT, signal.SIGTERM]),
        # nohup's SIGHUP first, then a kill: the kill was lost (only the first was raised)
        ([signal.SIGHUP, signal.SIGTERM], (signal.SIGHUP,), [signal.SIGTERM]),
        ([signal.SIGHUP], (signal.SIGHUP,), []),
    ],
)
def test_every_held_signal_is_given_back_once(
    handlers: list[int], sent: list[int], ignored: tuple[int, ...], delivered: list[int]
) -> None:
    for sig in ignored:
        signal.signal(sig, signal.SIG_IGN)
    with signals_held():
        for sig in sent:
            os.kill(os.getpid(), sig)
        assert handlers == []
    assert handlers == delivered
    for sig in ignored:
        assert signal.getsignal(sig) is signal.SIG_IGN


def test_nested_blocks_give_back_once(handlers: list[int]) -> None:
    with signals_held():
        with signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
        assert handlers == []
    assert handlers == [signal.SIGTERM]


def test_a_signal_while_the_handlers_are_swapped_leaves_none_swapped(
    handlers: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C between two swaps left the handlers swapped before it as the note-taker for
    good: a later SIGTERM was then noted and never acted on."""
    real = signal.signal
    calls: list[int] = []

    def interrupted(sig: int, handler: Any) -> Any:
        calls.append(sig)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(sig, handler)

    before = {sig: signal.getsignal(sig) for sig in HELD}
    monkeypatch.setattr(signal, "signal", interrupted)
    with pytest.raises(KeyboardInterrupt), signals_held():
        pass
    monkeypatch.setattr(signal, "signal", real)
    assert {sig: signal.getsignal(sig) for sig in HELD} == before
