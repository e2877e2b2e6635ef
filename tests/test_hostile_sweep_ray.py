"""``straits market sweep`` on Ray, attacked (the pass h3): ``RAY_ADDRESS`` in the environment
(``ray job submit`` sets it for its entrypoint), signals to a sweep on a local Ray."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SWEEP = [sys.executable, "-m", "straits", "market", "sweep", "--runs", "2", "--firms", "5"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(extra)
    return env


def test_ray_address_in_the_environment_is_the_cluster_joined(tmp_path: Path) -> None:
    """``RAY_ADDRESS`` set and no ``--ray-address``: the sweep joins that cluster, as Ray
    does. It started a local Ray with ``num_cpus``, which ray.init refuses when RAY_ADDRESS
    names a cluster: a ValueError traceback, even with a live cluster there. Nothing listens
    at this one: exit 2 naming RAY_ADDRESS, before --out is touched."""
    pytest.importorskip("ray")
    out = tmp_path / "s"
    p = subprocess.run(
        [*SWEEP, "--backend", "ray", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(RAY_ADDRESS="127.0.0.1:1"),
    )
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    assert "RAY_ADDRESS" in p.stderr and "127.0.0.1:1" in p.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("value", "address"),
    [("", None), ("  ", None), ("local", None), ("head:6379", "head:6379")],
)
def test_ray_address_from_env(monkeypatch: pytest.MonkeyPatch, value: str, address: Any) -> None:
    from straits.market.sweep.runner import ray_address_from_env

    monkeypatch.setenv("RAY_ADDRESS", value)
    assert ray_address_from_env() == address


class _Stop(Exception):
    pass


def test_a_local_ray_is_started_whatever_ray_address_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The local Ray a sweep starts is asked for by ``address="local"``: with an address of
    None, ray.init reads RAY_ADDRESS and joins (or fails to join) that cluster instead."""
    ray = pytest.importorskip("ray")
    from straits.market.sweep.runner import Simulation, on_ray

    seen: dict[str, Any] = {}

    def init(**kw: Any) -> None:
        seen.update(kw)
        raise _Stop

    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(_Stop):
        on_ray(Simulation({}, "m", None, 0, 5), [], lambda i, r: None, 2, None)
    assert seen["address"] == "local" and seen["num_cpus"] == 2
