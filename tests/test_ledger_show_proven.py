"""``ledger show`` shows what the log proves (atk66): an entry whose tenant and decision were
rewritten in the database was printed as the log's own, exit 0, though ``ledger verify`` and
receipts found it altered. Now it is marked (table: ALTERED; JSON: ``unproven: true``), the
others are shown as they are, and the command exits 1 naming the first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine

from test_ledger_cli import fill, straits


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 's.db'}"
    fill(url, 4)
    monkeypatch.setenv("STRAITS_DATABASE_URL", url)
    monkeypatch.delenv("STRAITS_LEDGER_KEY", raising=False)
    return url


def alter(url: str, sql: str) -> None:
    engine = create_engine(url)
    with engine.begin() as c:
        c.exec_driver_sql(sql)
    engine.dispose()


def test_an_untouched_log_is_shown_with_exit_0(db: str) -> None:
    r = straits("ledger", "show", "-o", "json")
    assert r.returncode == 0, r.stderr
    assert [e["seq"] for e in json.loads(r.stdout)] == [1, 2, 3, 4]
    assert not any("unproven" in e for e in json.loads(r.stdout))


# rows a database writer rewrote: the tenant, the body, who recorded it and what kind
ALTERATIONS = [
    "UPDATE ledger SET tenant = 'someone-else' WHERE seq = 2",
    "UPDATE ledger SET body = replace(body, '\"i\":1', '\"i\":7') WHERE seq = 2",
    "UPDATE ledger SET actor = 'root', kind = 'plan' WHERE seq = 2",
    # a body that is no JSON object: JSON and YAML printed nothing, only the error (led63)
    "UPDATE ledger SET body = '{' WHERE seq = 2",
    "UPDATE ledger SET body = '[1]' WHERE seq = 2",
    # one Python's JSON reads but no output writes: an "internal error", nothing printed (rev63)
    "UPDATE ledger SET body = '{\"i\": NaN}' WHERE seq = 2",
    "UPDATE ledger SET body = '{\"i\": -Infinity}' WHERE seq = 2",
]


@pytest.mark.parametrize("sql", ALTERATIONS)
@pytest.mark.parametrize("fmt", ["json", "yaml", "table"])
def test_an_altered_entry_is_marked_and_the_command_fails(db: str, sql: str, fmt: str) -> None:
    alter(db, sql)
    r = straits("ledger", "show", "-o", fmt)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "ledger entry 2 " in r.stderr
    if fmt == "json":
        shown = {e["seq"]: e.get("unproven", False) for e in json.loads(r.stdout)}
        assert shown == {1: False, 2: True, 3: False, 4: False}
        assert isinstance(json.loads(r.stdout)[1]["body"], dict | str)  # as stored if not JSON
    elif fmt == "yaml":
        assert [e["seq"] for e in yaml.safe_load(r.stdout)] == [1, 2, 3, 4]
    elif fmt == "table":
        assert r.stdout.count("ALTERED") == 1
    one = straits("ledger", "show", "2", "-o", "json")
    assert one.returncode == 1 and json.loads(one.stdout)["unproven"] is True
    assert straits("ledger", "show", "3", "-o", "json").returncode == 0


@pytest.mark.parametrize("body", ["{", '{"i": NaN}'])
@pytest.mark.parametrize("fmt", ["json", "yaml", "table"])
def test_an_entry_whose_body_is_no_json_object_is_printed(db: str, body: str, fmt: str) -> None:
    """One past the first 1,000 entries of a page (then the ones proven one by one) ended JSON
    and YAML with nothing printed (rev63); every entry of a page is proven at once now."""
    alter(db, f"UPDATE ledger SET body = '{body}' WHERE seq = 3")
    r = straits("ledger", "show", "-o", fmt)
    assert r.returncode == 1, (r.stdout, r.stderr)
    if fmt == "table":
        assert r.stdout.count("ALTERED") == 1
        return
    shown = json.loads(r.stdout) if fmt == "json" else yaml.safe_load(r.stdout)
    assert [(e["seq"], e.get("unproven", False)) for e in shown] == [
        (1, False),
        (2, False),
        (3, True),
        (4, False),
    ]
    assert shown[2]["body"] == body


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_an_altered_entry_past_the_first_thousand_of_a_page_is_marked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """Only the first 1,000 entries of a page were proven one by one to mark them: an altered
    entry past them whose body is still a JSON object was printed unmarked (exit 1 and the
    error named it; chain64)."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    fill(url, 1003, ("a",))
    monkeypatch.setenv("STRAITS_DATABASE_URL", url)
    monkeypatch.delenv("STRAITS_LEDGER_KEY", raising=False)
    alter(url, "UPDATE ledger SET body = replace(body, '\"i\":1001', '\"i\":7') WHERE seq = 1002")
    r = straits("ledger", "show", "--limit", "2000", "-o", fmt)
    assert r.returncode == 1, (r.stdout[-500:], r.stderr)
    assert "ledger entry 1002 " in r.stderr
    if fmt == "table":
        assert r.stdout.count("ALTERED") == 1
        return
    shown = json.loads(r.stdout)
    assert len(shown) == 1003
    assert [e["seq"] for e in shown if e.get("unproven")] == [1002]
