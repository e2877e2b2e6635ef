"""A Ray cluster started with token authentication, joined by `market sweep --ray-address`
without its token (left64; ray62's left-out): the error names the token and what to set, at
the boundary the Ray tests mock (`ray.init`), with the failures Ray 2.60 gives (measured
against `RAY_AUTH_MODE=token ray start --head`): without RAY_AUTH_MODE a ConnectionError
"Failed to connect to Ray cluster at ..." after 20 s whose cause quotes the
AuthenticationError in a traceback's text; with a wrong token the same; with
`RAY_AUTH_MODE=token` and no token anywhere ray.init's own AuthenticationError, which was a
traceback."""

from __future__ import annotations

from typing import Any

import pytest

from straits.errors import InputError

ray = pytest.importorskip("ray")
from straits.market.sweep import runner  # noqa: E402

QUOTED = (
    "Failed to connect to GCS. Last connection error: Traceback (most recent call last):\n"
    '  File "python/ray/includes/common.pxi", line 119, in ray._raylet.check_status\n'
    "ray.exceptions.AuthenticationError: RPC error: InvalidAuthToken: Authentication token "
    "is missing or incorrect. Ensure that the token for the cluster is available ..."
)


def _refused_by_gcs() -> BaseException:
    try:
        try:
            raise RuntimeError(QUOTED)
        except RuntimeError as e:
            raise ConnectionError("Failed to connect to Ray cluster at 192.0.2.2:6391") from e
    except ConnectionError as e:
        return e


def _no_token_found() -> BaseException:
    err: BaseException = ray.exceptions.AuthenticationError(
        "Token authentication is enabled but no authentication token was found"
    )
    return err


def _join(monkeypatch: pytest.MonkeyPatch, failure: BaseException) -> InputError:
    def init(**kw: Any) -> None:
        raise failure

    monkeypatch.setattr(runner, "probe_ray", lambda address, option: None)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(InputError) as caught:
        runner.join_ray("127.0.0.1:6391")
    return caught.value


@pytest.mark.parametrize(
    ("mode", "failure"),
    [
        (None, _refused_by_gcs),  # no RAY_AUTH_MODE: "Failed to connect" alone
        ("token", _refused_by_gcs),  # a wrong token
        ("token", _no_token_found),  # a traceback on c9dafbc
    ],
    ids=["no-mode", "wrong-token", "no-token"],
)
def test_a_cluster_that_asks_for_a_token_is_named_so(
    monkeypatch: pytest.MonkeyPatch, mode: str | None, failure: Any
) -> None:
    if mode is None:
        monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    else:
        monkeypatch.setenv("RAY_AUTH_MODE", mode)
    err = _join(monkeypatch, failure())
    assert err.path == "--ray-address" and err.exit_code == 2
    assert "token" in err.detail  # the reason names the token, not "Failed to connect" alone
    for name in ("RAY_AUTH_MODE=token", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        assert name in (err.expected or "")


def test_another_failure_to_join_is_not_blamed_on_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    err = _join(monkeypatch, ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379"))
    assert err.path == "--ray-address" and "RAY_AUTH_TOKEN" not in (err.expected or "")
    assert "token" not in err.detail and "Failed to connect" in err.detail
