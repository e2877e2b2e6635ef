"""Tampering with the ``decisions`` table, on SQLite and PostgreSQL: every recorded check has
exactly one decision row, equal to its entry. A row deleted alone, duplicated, moved to another
check, or with its actor edited is found by the full verification (naming the entry) and by
the tenant's own (naming the tenant's number); honest rows verify."""

from __future__ import annotations

from pathlib import Path

import pytest

from straits.rules import RuleSet
from straits.store import Store
from straits.store.integrity import verify_store
from straits.store.keys import Keys
from straits.store.records import record_check
from straits.store.tenant_verify import verify_tenant
from test_ledger_log import fill, sql
from test_rules_engine import DESIGN_REQUEST


def _checks(db_url: str, rules: RuleSet) -> list[tuple[int, int]]:
    """Three recorded checks of tenant kunlun among other entries: (seq, tenant_seq) each."""
    from straits.api import check_json, parse_check_document

    store = Store(db_url)
    out = []
    for i in range(3):
        fill(store, 1, ("other",))
        doc = {**DESIGN_REQUEST, "chip": ("H100-SXM", "H20", "H800-SXM")[i]}
        reqs, was_list = parse_check_document(doc, "test")
        e = record_check(
            store, rules, reqs, check_json(rules, reqs, was_list), tenant="kunlun", actor="alice"
        )
        out.append((e.seq, e.tenant_seq))
    store.close()
    return out


DUPLICATE = (
    "INSERT INTO decisions (tenant, actor, request, answer, ledger_seq, created_at) "
    "SELECT tenant, actor, request, answer, ledger_seq, created_at FROM decisions "
    "WHERE ledger_seq = :s"
)
#: what, the statement (``:s`` is the second check's entry, ``:t`` the third's), and which
#: check (0, 1, 2) the verification names first
TAMPER: list[tuple[str, str, int]] = [
    ("row deleted", "DELETE FROM decisions WHERE ledger_seq = :s", 1),
    ("every row deleted", "DELETE FROM decisions WHERE ledger_seq > :s - 100", 0),
    ("row duplicated", DUPLICATE, 1),
    ("row moved to another check", "UPDATE decisions SET ledger_seq = :t WHERE ledger_seq = :s", 1),
    ("actor edited", "UPDATE decisions SET actor = 'mallory' WHERE ledger_seq = :s", 1),
]


@pytest.mark.parametrize(("what", "statement", "first"), TAMPER, ids=[t[0] for t in TAMPER])
def test_a_decision_row_deleted_duplicated_or_moved_is_found(
    db_url: str, rules: RuleSet, what: str, statement: str, first: int
) -> None:
    checks = _checks(db_url, rules)
    assert verify_store(Store(db_url), Keys()).ok
    assert verify_tenant(Store(db_url), Keys(), "kunlun").ok
    sql(db_url, statement, s=checks[1][0], t=checks[2][0])
    v = verify_store(Store(db_url), Keys())
    assert not v.ok and v.first_bad == checks[first][0], (v.first_bad, v.problem)
    assert v.code == "decision-row", v.to_json()
    t = verify_tenant(Store(db_url), Keys(), "kunlun")
    assert not t.ok and t.first_bad == checks[first][1], t
    assert verify_tenant(Store(db_url), Keys(), "other").ok  # another tenant's records hold


LOG_CODES = {
    "entry altered, whole chain re-hashed": "tree-altered",
    "entry altered, chain and tree rewritten": "history-rewritten",
    "tree node altered": "tree-altered",
    "tree leaf deleted": "tree-altered",
    "tail truncated consistently": "tail-removed",
    "checkpoint forged with another key": "checkpoint-untrusted",
    "checkpoint root altered": "checkpoint-untrusted",
}
ROWS: list[tuple[str, str, int, str]] = [
    ("entry deleted", "DELETE FROM ledger WHERE seq = 4", 4, "entry-missing"),
    ("entry altered", "UPDATE ledger SET actor = 'mallory' WHERE seq = 4", 4, "entry-altered"),
    ("tenant changed", "UPDATE ledger SET tenant = 'c' WHERE seq = 1", 1, "entry-altered"),
    ("entries swapped", "UPDATE ledger SET seq = 1000 + 9 - seq WHERE seq IN (4, 5)", 4, ""),
    ("last entry deleted", "DELETE FROM ledger WHERE seq = 8", 8, "tail-removed"),
    ("head row deleted", "DELETE FROM ledger_head", 8, "head-missing"),
]


@pytest.mark.parametrize("what", list(LOG_CODES))
def test_every_tamper_case_has_its_code(db_url: str, keys: Keys, what: str) -> None:
    from straits.store import checkpoints
    from straits.store.integrity import CODES
    from test_ledger_log import TAMPER

    tamper = {t[0]: t[1] for t in TAMPER}[what]
    store = Store(db_url)
    fill(store, 8)
    assert keys.signer is not None
    checkpoints.issue(store, keys.signer)
    tamper(db_url)
    v = verify_store(Store(db_url), keys)
    assert not v.ok and v.code == LOG_CODES[what] and v.code in CODES, v.to_json()
    assert v.to_json()["code"] == v.code


@pytest.mark.parametrize(("what", "statement", "seq", "code"), ROWS, ids=[r[0] for r in ROWS])
def test_a_row_of_the_log_changed_has_its_code_and_entry(
    db_url: str, what: str, statement: str, seq: int, code: str
) -> None:
    fill(Store(db_url), 8)
    if what == "entries swapped":  # two steps: seq is the primary key
        sql(db_url, statement)
        sql(db_url, "UPDATE ledger SET seq = seq - 1000 WHERE seq > 1000")
        code = "entry-altered"  # the number is part of the hash
    else:
        sql(db_url, statement)
    v = verify_store(Store(db_url), Keys())
    assert not v.ok and v.first_bad == seq and v.code == code, v.to_json()


@pytest.mark.parametrize(
    ("statement", "seq"),
    [
        ("UPDATE ledger SET tenant_seq = 'x' WHERE seq = 4", 4),
        ("UPDATE ledger SET body = x'ff00' WHERE seq = 3", 3),
        # text that is not UTF-8: the driver's decode failed the read ('became unavailable')
        ("UPDATE ledger SET body = CAST(x'7bff00' AS TEXT) WHERE seq = 4", 4),
        ("UPDATE ledger SET actor = CAST(x'ff' AS TEXT) WHERE seq = 6", 6),
        ("UPDATE ledger_head SET seq = '8x'", None),
        ("UPDATE decisions SET ledger_seq = 'x'", None),  # was 'entry-rewritten'
    ],
)
def test_a_value_of_another_type_is_reported_with_its_entry(
    tmp_path: Path, statement: str, seq: int | None
) -> None:
    """SQLite keeps text in an INTEGER column: verify stopped with an error (no JSON, no
    entry, no code); now it reports ``value-altered`` and the first entry holding one."""
    url = f"sqlite:///{tmp_path / 'l.db'}"
    fill(Store(url), 8)
    sql(
        url,
        "INSERT INTO decisions (tenant, actor, request, answer, ledger_seq, created_at) "
        "VALUES ('b', 'test', '{}', '{}', 8, '2026-01-01')",
    )
    sql(url, statement)
    v = verify_store(Store(url), Keys())
    assert (v.ok, v.code, v.first_bad) == (False, "value-altered", seq), v.to_json()
    if "decisions" not in statement:  # a row tenant a's entries do not point to
        t = verify_tenant(Store(url), Keys(), "a")  # it was an error, not a verification
        assert (t.ok, t.code) == (False, "value-altered"), t


@pytest.mark.parametrize("command", ["export", "impact"])
def test_a_bad_key_file_is_named_not_taken_for_the_plan(
    tmp_path: Path,
    rules: RuleSet,
    example_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    """A ledger key file that is empty (truncated) was reported as 'PLAN: not a signer key':
    the plan's reader relabelled every input error as the PLAN argument's."""
    from straits.loading import load_scenario
    from straits.plan import make_plan
    from straits.store.records import record_plan
    from test_ledger_cli import straits

    url = f"sqlite:///{tmp_path / 'l.db'}"
    sc = load_scenario(example_path)
    plan_id, _ = record_plan(
        Store(url),
        sc,
        make_plan(sc, rules=rules, solver="greedy"),
        rules,
        {"solver": "greedy"},
        tenant="t",
        actor="a",
    )
    key = tmp_path / "ledger.key"
    key.write_text("")
    key.chmod(0o600)
    monkeypatch.setenv("STRAITS_LEDGER_KEY", str(key))
    args = {
        "export": ("export", plan_id, "--to", "slurm", "-o", str(tmp_path / "out")),
        "impact": ("impact", "--plan", plan_id, "--date", "2025-07-01", "--no-replan"),
    }[command]
    r = straits(*args, "--db", url)
    assert r.returncode == 2, (r.returncode, r.stderr)
    err = " ".join(r.stderr.split())
    assert "PLAN" not in err and str(key) in err, err
