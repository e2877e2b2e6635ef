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
from straits.market.sweep import ray_token, runner  # noqa: E402

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
    monkeypatch.setattr(ray_token, "ask_gcs", lambda address: None)  # no answer: ray.init
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


def test_an_unreadable_token_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """RAY_AUTH_TOKEN_PATH naming no file (or an empty one): ray.init's AuthenticationError
    says so, and the error said "it refused the token given" (rev65, measured on Ray 2.60)."""
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    failure = ray.exceptions.AuthenticationError(
        "RAY_AUTH_TOKEN_PATH is set but file cannot be opened or is empty: /tmp/nope. Ensure "
        "that the token for the cluster is available ..."
    )
    err = _join(monkeypatch, failure)
    assert err.path == "--ray-address" and "RAY_AUTH_TOKEN_PATH" in err.detail


def _probed(monkeypatch: pytest.MonkeyPatch, answer: str | None) -> tuple[list[str], Any]:
    """join_ray with the GCS child answering ``answer``; ray.init recorded, failing as Ray's
    20 s of retries end."""
    calls: list[str] = []

    def init(**kw: Any) -> None:
        calls.append(kw["address"])
        raise _refused_by_gcs()

    monkeypatch.setattr(runner, "probe_ray", lambda address, option: None)
    monkeypatch.setattr(ray_token, "ask_gcs", lambda address: answer)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(InputError) as caught:
        runner.join_ray("127.0.0.1:6391")
    return calls, caught.value


def test_a_refused_token_is_answered_before_ray_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """mkt65: the GCS's answer to one call of Ray's GCS client ends the join, without
    ray.init's 20 s of retries (fails on the old code: ray.init was called)."""
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    answer = "refused RPC error: InvalidAuthToken: Authentication token is missing or incorrect"
    calls, err = _probed(monkeypatch, answer)
    assert calls == []
    assert err.path == "--ray-address" and "RAY_AUTH_TOKEN" in (err.expected or "")


@pytest.mark.parametrize("answer", [None, "accepted", "unknown", "", "refusedX"])
def test_any_other_answer_leaves_the_join_to_ray(
    monkeypatch: pytest.MonkeyPatch, answer: str | None
) -> None:
    calls, _ = _probed(monkeypatch, answer)
    assert calls == ["127.0.0.1:6391"]


@pytest.mark.parametrize("address", ["ray://127.0.0.1:10001", "auto"])
def test_ray_client_and_auto_addresses_are_not_probed(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    asked: list[str] = []

    def ask(a: str) -> str:
        asked.append(a)
        return "refused x"

    monkeypatch.setattr(ray_token, "ask_gcs", ask)
    ray_token.probe_token(address)
    assert asked == []


def test_a_gcs_that_never_answers_is_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """The child is killed after TOKEN_PROBE_SECONDS: a port that accepts and says nothing
    held Ray's GCS client 40 s (no answer: the join goes on to ray.init)."""
    import socket
    import time

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        monkeypatch.setattr(ray_token, "TOKEN_PROBE_SECONDS", 3.0)
        start = time.monotonic()
        assert ray_token.ask_gcs(f"127.0.0.1:{port}") is None
        assert time.monotonic() - start < 8


def test_the_child_does_not_outlive_a_killed_cli() -> None:
    """rev65b: a CLI killed (SIGTERM: a supervisor, ``kill``) while its child asked a silent
    port left the child running on its own for ~40 s, Ray's GCS client having no timeout. The
    child ends itself once its limit is past (fails on the old code: still running)."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    if not os.path.isdir("/proc/self"):
        pytest.skip("needs /proc")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        cli = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from straits.market.sweep import ray_token as t\n"
                "t.TOKEN_PROBE_SECONDS = 2.0\n"
                f"t.ask_gcs('127.0.0.1:{server.getsockname()[1]}')",
            ]
        )
        children: list[int] = []
        try:
            deadline = time.monotonic() + 20
            while not children and time.monotonic() < deadline:
                with open(f"/proc/{cli.pid}/task/{cli.pid}/children") as f:
                    children = [int(x) for x in f.read().split()]
                time.sleep(0.05)
            assert children, "the probe's child never started"
            cli.send_signal(signal.SIGTERM)
            cli.wait(10)
            start = time.monotonic()
            while any(map(alive, children)) and time.monotonic() - start < 8:
                time.sleep(0.2)
            assert not any(map(alive, children))
        finally:
            cli.kill()
            cli.wait()
            for pid in children:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


def test_the_childs_answer_is_read_after_its_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    """What else the child prints (Ray's own lines) is not read as its answer."""
    import subprocess

    printed = "refused by a banner\nstraits-ray-token: accepted\n"

    def run(*a: Any, **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess([], 0, stdout=printed, stderr="")

    monkeypatch.setattr(subprocess, "run", run)
    assert ray_token.ask_gcs("127.0.0.1:6391") == "accepted"
    printed = "refused by a banner\n"
    assert ray_token.ask_gcs("127.0.0.1:6391") is None


@pytest.mark.slow
def test_a_real_token_cluster_is_named_in_seconds(tmp_path: Any) -> None:
    """Against a real `RAY_AUTH_MODE=token ray start --head`: joined without a token, the
    sweep is exit 2 naming the token in a few seconds (it took ~23 s, Ray's 20 attempts)."""
    import contextlib
    import os
    import shutil
    import signal
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if ray_cli is None:
        pytest.skip("no `ray` command")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = Path("/tmp") / f"st-rt-{os.getpid()}"  # short: Ray's socket paths have a limit
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "a" * 32}
    head = subprocess.Popen(
        [
            ray_cli,
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--num-cpus=1",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={temp}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.5)
        time.sleep(2)  # the GCS answers before the head is up; the probe needs only the GCS
        plain = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        start = time.monotonic()
        p = subprocess.run(
            [
                *(sys.executable, "-m", "straits", "market", "sweep", "--runs", "2"),
                *("--ray-address", f"127.0.0.1:{port}", "--out", str(tmp_path / "s")),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=plain,
        )
        took = time.monotonic() - start
    finally:
        with contextlib.suppress(OSError):
            os.killpg(head.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(10)
        with contextlib.suppress(OSError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait()
        for line in subprocess.run(
            ["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=False
        ).stdout.splitlines():
            pid, _, args = line.strip().partition(" ")
            if str(temp) in args:  # the head's own processes only, by id
                with contextlib.suppress(OSError):
                    os.kill(int(pid), signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
    assert p.returncode == 2, p.stderr
    assert "--ray-address" in p.stderr and "RAY_AUTH_TOKEN" in p.stderr
    assert took < 12, took
