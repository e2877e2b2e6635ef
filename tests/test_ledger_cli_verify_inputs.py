"""`ledger verify` on what it is handed, end to end: a ledger made by the first schema verifies
after the upgrade, one tenant's export is refused as a log (exit 2) where a whole one verifies,
and the quick check walks the chain to a head given as an entry's chain hash. Split from
test_ledger_cli.py, whose CLI runner and fill it uses."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import create_engine, text

from straits.store import Store, ledger
from straits.store.integrity import verify_store
from straits.store.keys import Keys
from test_ledger_cli import fill, straits


# --- migration from the first schema -------------------------------------------------------------
def test_a_ledger_made_by_the_first_schema_verifies_after_the_upgrade(
    db_url: str, tmp_path: Path
) -> None:
    from importlib import resources

    from alembic import command
    from alembic.config import Config

    from straits.store.ledger import GENESIS, Entry, canonical

    engine = create_engine(db_url)
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("straits.store").joinpath("migrations"))
    )
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        prev = GENESIS
        for seq in range(1, 12):  # entries exactly as the first version wrote them
            e = Entry(
                seq,
                f"2026-01-0{1 + seq % 9}T00:00:00.000000+00:00",
                "ab"[seq % 2],
                "old",
                "check",
                canonical({"i": seq}),
                prev,
                "",
            )
            h = e.expected_hash()
            conn.execute(
                text(
                    "INSERT INTO ledger (seq, recorded_at, tenant, actor, kind, body, "
                    "prev_hash, hash) VALUES (:s, :r, :t, :a, :k, :b, :p, :h)"
                ),
                {
                    "s": seq,
                    "r": e.recorded_at,
                    "t": e.tenant,
                    "a": e.actor,
                    "k": e.kind,
                    "b": e.body,
                    "p": prev,
                    "h": h,
                },
            )
            prev = h
        conn.execute(
            text("INSERT INTO ledger_head (id, seq, hash) VALUES (1, 11, :h)"), {"h": prev}
        )
    engine.dispose()
    published = f"11:{prev}"
    store = Store(db_url)  # upgrades to the latest revision, building the tree
    v = verify_store(store, Keys())
    assert v.ok, v.problem
    assert [e.tenant_seq for e in ledger.entries(store, tenant="b")] == list(range(1, 7))
    fill(db_url, 2)
    p = straits("ledger", "verify", "--db", db_url, "--head", published, "--json")
    assert p.returncode == 0, p.stdout
    assert json.loads(p.stdout)["entries"] == 13


def test_one_tenants_export_is_not_verified_as_a_log(tmp_path: Path) -> None:
    """`ledger export --tenant T` writes T's entries only; `ledger verify --file` of it said
    the log was broken, the other tenants' entries removed (entry-missing, exit 1), of an
    honest export (atk39). It is bad input, exit 2, naming --file; a whole export verifies,
    and a part with a gap in the tenant's own numbering is still an entry removed."""
    db = f"sqlite:///{tmp_path / 'l.db'}"
    store = Store(db)
    for i in range(6):
        ledger.record(store, tenant="ab"[i % 2], actor="t", kind="check", body={"i": i})
    store.close()
    part, whole = tmp_path / "a.jsonl", tmp_path / "all.jsonl"
    assert straits("ledger", "export", "--db", db, "--tenant", "a", "-o", str(part)).returncode == 0
    assert straits("ledger", "export", "--db", db, "-o", str(whole)).returncode == 0
    r = straits("ledger", "verify", "--file", str(part), "-o", "json")
    assert r.returncode == 2 and "--file" in r.stderr, r.stdout + r.stderr
    assert straits("ledger", "verify", "--file", str(whole)).returncode == 0
    lines = part.read_text().splitlines()
    gap = tmp_path / "gap.jsonl"
    gap.write_text("\n".join([lines[0], lines[2]]) + "\n")  # the tenant's entry 2 removed too
    r = straits("ledger", "verify", "--file", str(gap), "-o", "json")
    assert r.returncode == 1 and json.loads(r.stdout)["code"] == "entry-missing"


def test_the_quick_check_walks_the_chain_to_a_chain_hash_head(tmp_path: Path) -> None:
    """`ledger verify --quick --head SEQ:HASH` with HASH entry SEQ's chain hash compared the
    stored hash column of entry SEQ and said 'proven', though the entries before it were
    altered (atk39): the chain has no shortcut, so the quick check walks it to SEQ and proves
    the tree of those entries a prefix of the stored one."""
    db = f"sqlite:///{tmp_path / 'l.db'}"
    store = Store(db)
    for i in range(5):
        ledger.record(store, tenant="a", actor="t", kind="check", body={"i": i})
    head = ledger.get_entry(store, 3)
    assert head is not None
    for i in range(3):  # the log grows after the head was published
        ledger.record(store, tenant="a", actor="t", kind="check", body={"j": i})
    store.close()
    published = f"3:{head.hash}"
    r = straits("ledger", "verify", "--db", db, "--quick", "--head", published, "-o", "json")
    assert r.returncode == 0, r.stdout
    assert json.loads(r.stdout)["heads"][0]["proven_by"] == "chain hash of entry 3"
    engine = create_engine(db)
    with engine.begin() as conn:
        conn.execute(text("UPDATE ledger SET body = '{\"i\": 99}' WHERE seq = 2"))
    engine.dispose()
    r = straits("ledger", "verify", "--db", db, "--quick", "--head", published, "-o", "json")
    out = json.loads(r.stdout)
    assert (r.returncode, out["code"], out["first_bad"]) == (1, "history-rewritten", 2)
    # a failed quick check says it is one: its report said "the hash chain of its 8 entries
    # verifies" of a chain it never walked (here, one broken at entry 2)
    from straits.store.integrity import QUICK_NOTE

    assert QUICK_NOTE in out["notes"]
    r = straits("ledger", "verify", "--db", db, "--quick", "--head", published)
    assert r.returncode == 1 and "hash chain" not in r.stdout
    # a head that does not name its entry's hash is still forged, not walked
    r = straits("ledger", "verify", "--db", db, "--quick", "--head", "3:" + "ab" * 32, "-o", "json")
    assert (r.returncode, json.loads(r.stdout)["code"]) == (1, "head-forged")
