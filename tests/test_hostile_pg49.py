"""The hostile pass pg49 (PostgreSQL's ledger and store): database URLs an operator may write
that the store cannot use, and the database's password kept out of every message (the CLI
runner of test_hostile_operators.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_hostile_operators import REQUEST, cli


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://u:pw@127.0.0.1:9/x",
        "postgresql+psycopg_async://u@127.0.0.1:9/x",
        "sqlite+aiosqlite:///{tmp}/x.db",
    ],
)
def test_an_asyncio_driver_is_exit_2_naming_the_url(tmp_path: Path, url: str) -> None:
    """A traceback at the first query (a TypeError for asyncpg's ``connect_timeout``,
    MissingGreenlet for the others); nothing is written."""
    db = url.format(tmp=tmp_path)
    code, err = cli("check", "--record", "--db", db, stdin=REQUEST)
    assert code == 2
    assert "asyncio" in err
    assert not (tmp_path / "x.db").exists()
