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


SECRET = "s3cretPW"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://u:{SECRET}@127.0.0.1:9/x",
        f"postgresql+psycopg://u@127.0.0.1:9/x?password={SECRET}",
        f"postgresql+psycopg:///x?host=127.0.0.1&port=9&user=u&password={SECRET}",
    ],
)
def test_the_database_password_is_never_printed(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """libpq takes the password after the user name or as ``?password=``: the second was
    printed whole in every message naming the database, and ``config show`` printed both
    (it hides tokens)."""
    import typer
    from click.testing import CliRunner

    from straits.cli import app
    from straits.cli.common import state
    from straits.store.db import safe_url

    assert SECRET not in safe_url(url) and "***" in safe_url(url)
    code, err = cli("ledger", "verify", "--db", url)  # nothing listens on port 9
    assert code == 1 and SECRET not in err
    monkeypatch.setenv("STRAITS_DATABASE_URL", url)
    for fmt in ("table", "json"):
        state._config = None
        r = CliRunner(mix_stderr=False).invoke(
            typer.main.get_command(app), ["config", "show", "-o", fmt]
        )
        assert r.exit_code == 0 and "database" in r.stdout
        assert SECRET not in r.stdout + r.stderr
