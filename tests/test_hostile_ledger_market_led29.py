"""The ledger and market command lines under a hostile pass (led29): each case failed before its
fix and is answered now with its code and exit status (docs/robustness.md, "led29"):

* a ``--tenant`` filter no entry can have (empty, a control character, over 100 characters) on
  ``ledger show``, ``export`` and ``verify``, ``rules replay`` and ``impact``: refused, exit 2,
  where it printed an empty table (or verified nothing) with exit 0; a name with a space is a
  tenant's name (``check --record --tenant 'a b'`` records it) and still filters;
* a country with no rental capacity (``ai_rental_share=0``) had a rental price: it has none
  (``null`` in JSON and CSV, ``-`` in the table, a double column of nulls in Parquet);
* a key given twice in an export line, a receipt or a checkpoint handed to a witness
  (``{"tenant": "evil", ..., "tenant": "acme"}``) verified as its last value, what a reader
  that takes the first sees otherwise: exit 2 naming the key; NaN in a receipt is exit 2 too.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from straits.store import Store, ledger
from straits.store.note import Signer
from test_ledger_cli import straits

SIGNER = Signer.generate("straits.test/led29")


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    store = Store(url)
    for tenant in ("a b", "acme"):
        ledger.record(store, tenant=tenant, actor="t", kind="check", body={"t": tenant})
    store.close()
    return url


NO_TENANT = ["", "a\tb", "a\nb", "\x1b[2J", "x" * 129]  # 128: the longest (led30)
FILTERS = [
    ["ledger", "show"],
    ["ledger", "export"],
    ["ledger", "verify"],
    ["rules", "replay", "--since", "2020-01-01"],
    ["impact", "--date", "2026-01-01"],
]


@pytest.mark.parametrize("command", FILTERS, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize("tenant", NO_TENANT, ids=repr)
def test_a_tenant_no_entry_can_have_is_refused(db: str, command: list[str], tenant: str) -> None:
    r = straits(*command, "--db", db, "--tenant", tenant)
    assert r.returncode == 2, r.stdout
    assert "--tenant" in r.stderr
    assert r.stdout == ""


def test_a_tenant_name_with_a_space_still_filters(db: str) -> None:
    r = straits("ledger", "show", "--db", db, "--tenant", "a b", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [e["tenant"] for e in rows] == ["a b"]
    # a tenant with no entries yet is a name a tenant can have: an empty list, exit 0
    r = straits("ledger", "show", "--db", db, "--tenant", "nobody-yet", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []


NO_SG = ["--set", "supply.countries.SG.ai_rental_share=0", "--firms", "5", "--no-compare"]


@pytest.fixture(scope="module")
def no_sg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("no_sg")
    for suffix in ("json", "csv", "parquet"):
        r = straits("market", *NO_SG, "-o", str(out / f"m.{suffix}"))
        assert r.returncode == 0, r.stderr
    return out


def test_a_country_with_no_capacity_has_no_price(no_sg: Path) -> None:
    doc = json.loads((no_sg / "m.json").read_text())
    for month in doc["months"]:
        assert month["capacity_chip_hours"]["SG"] == 0
        assert month["price_usd_per_chip_hour"]["SG"] is None
        assert month["utilisation"]["SG"] == 0
        assert month["capacity_chip_hours"]["MY"] > 0
        assert month["price_usd_per_chip_hour"]["MY"] > 0
    rows = list(csv.DictReader((no_sg / "m.csv").open()))
    assert {r["price_usd_per_chip_hour.SG"] for r in rows} == {""}
    assert all(float(r["price_usd_per_chip_hour.MY"]) > 0 for r in rows)


def test_a_price_column_of_no_values_is_still_numbers_in_parquet(no_sg: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(no_sg / "m.parquet")
    column = table.column("price_usd_per_chip_hour.SG")
    assert table.schema.field("price_usd_per_chip_hour.SG").type == pa.float64()
    assert column.null_count == len(column)


def test_the_table_prints_no_price_for_no_capacity(monkeypatch: pytest.MonkeyPatch) -> None:
    from straits.cli.common import console

    monkeypatch.setattr(console, "width", 250)  # one line per row
    r = straits("market", *NO_SG)
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if re.match(r"│ \d{4}-\d\d │", line)]
    head = next(line for line in r.stdout.splitlines() if "$/h SG" in line)
    cells = [c.strip() for c in head.split("┃")]
    sg = cells.index("$/h SG")
    assert rows
    for line in rows:
        assert line.split("│")[sg].strip() == "-"


@pytest.fixture
def signed(db: str, tmp_path: Path) -> tuple[str, Path, Path]:
    """The two-entry log with a checkpoint at 2; its key and .pub on disk."""
    key, pub = tmp_path / "k", tmp_path / "k.pub"
    key.write_text(SIGNER.skey + "\n")
    key.chmod(0o600)
    pub.write_text(SIGNER.verifier.vkey + "\n")
    assert straits("ledger", "checkpoint", "--db", db, "--key", str(key)).returncode == 0
    return db, key, pub


def _first_key_twice(text: str, key: str, value: object) -> str:
    """The JSON object ``text`` with ``key`` given once more, first, with ``value``."""
    return "{" + json.dumps(key) + ": " + json.dumps(value) + ", " + text.lstrip()[1:]


def test_an_export_line_with_a_key_twice_is_refused(
    signed: tuple[str, Path, Path], tmp_path: Path
) -> None:
    db, _, pub = signed
    out = tmp_path / "l.jsonl"
    assert straits("ledger", "export", "--db", db, "-o", str(out)).returncode == 0
    lines = out.read_text().splitlines()
    assert straits("ledger", "verify", "--file", str(out), "--pubkey", str(pub)).returncode == 0
    lines[0] = _first_key_twice(lines[0], "tenant", "evil")
    out.write_text("\n".join(lines) + "\n")
    r = straits("ledger", "verify", "--file", str(out), "--pubkey", str(pub), "--json")
    assert r.returncode == 2, r.stdout
    assert "duplicate key 'tenant'" in r.stderr
    assert "line 1" in r.stderr


@pytest.mark.parametrize(
    ("key", "value"), [("tree_size", 1), ("checkpoint", "x"), ("receipt", float("nan"))]
)
def test_a_receipt_with_a_key_twice_or_nan_is_refused(
    signed: tuple[str, Path, Path], tmp_path: Path, key: str, value: object
) -> None:
    db, _, pub = signed
    receipt = tmp_path / "r.json"
    assert straits("ledger", "receipt", "1", "--db", db, "-o", str(receipt)).returncode == 0
    ok = straits("ledger", "verify-receipt", str(receipt), "--pubkey", str(pub))
    assert ok.returncode == 0, ok.stderr
    text = receipt.read_text()
    receipt.write_text(
        _first_key_twice(text, key, value)
        if key != "receipt"
        else text.replace('"straits-ledger-receipt/1"', "NaN")
    )
    r = straits("ledger", "verify-receipt", str(receipt), "--pubkey", str(pub), "--json")
    assert r.returncode == 2, r.stdout
    assert r.stdout == ""
    # the witness reads the receipt's checkpoint the same way
    w = straits(
        "ledger", "witness", "--checkpoint", str(receipt), "--pubkey", str(pub),
        "--state", str(tmp_path / "w.json"),
    )  # fmt: skip
    assert w.returncode == 2, w.stdout
    assert not (tmp_path / "w.json").exists()
