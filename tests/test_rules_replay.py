"""`straits rules replay`: recorded decisions and plans re-evaluated against candidate packs.

The ledger is real (SQLite, and PostgreSQL when STRAITS_TEST_POSTGRES_URL is set). Decisions are
recorded with the worked example's pack of March 2025 (before the H20 letter) and replayed with
the pack that encodes it; which ones must change is derived from the letter's terms, not copied
from the output.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from click.testing import CliRunner

from straits.loading import load_scenario
from straits.model.request import CheckRequest
from straits.plan import make_plan
from straits.rules import RuleSet, ruleset
from straits.rules.replay import Replayer
from straits.store import Store, ledger
from straits.store.records import record_check, record_plan

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "rule-packs" / "h20-letter"
BEFORE, AFTER = EXAMPLE / "before", EXAMPLE / "after"
REQUESTS: list[dict[str, Any]] = json.loads((EXAMPLE / "requests.json").read_text())
LETTER = dt.date(2025, 4, 9)
#: the letter's reach: China, Hong Kong, Macau, D:5 as destination or headquarters
REACH = {"CN", "HK", "MO", "RU", "IR", "KP"}


def caught_by_letter(r: dict[str, Any]) -> bool:
    return (
        r["action"] == "procure"
        and r["chip"] == "H20"
        and dt.date.fromisoformat(r["date"]) >= LETTER
        and (r["site"]["country"] in REACH or r["tenant"]["hq"] in REACH)
    )


@pytest.fixture(scope="module")
def before() -> RuleSet:
    return ruleset((BEFORE,))


@pytest.fixture(scope="module")
def after() -> RuleSet:
    return ruleset((BEFORE, AFTER))


def record(store: Store, rules: RuleSet, tenant: str = "hz-cloud") -> ledger.Entry:
    reqs = [CheckRequest.model_validate(r) for r in REQUESTS]
    answer = [d.to_json() for d in rules.check_many(reqs)]
    return record_check(store, rules, reqs, answer, tenant=tenant, actor="test")


def test_replay_lists_exactly_the_decisions_the_letter_changes(
    db_url: str, before: RuleSet, after: RuleSet
) -> None:
    store = Store(db_url)
    entry = record(store, before)
    result = Replayer(store, after, before).run(dt.date.today())
    assert result.decisions == len(REQUESTS) and result.entries == 1
    expected = [i for i, r in enumerate(REQUESTS) if caught_by_letter(r)]
    assert expected and len(expected) < len(REQUESTS)  # the table tries both sides
    assert [CheckRequest.model_validate(c.ref["request"]) for c in result.changes] == [
        CheckRequest.model_validate(REQUESTS[i]) for i in expected
    ]
    for c in result.changes:
        assert (c.seq, c.kind, c.tenant) == (entry.seq, "check", "hz-cloud")
        assert (c.before.decision, c.after.decision) == ("allow", "deny")
        assert c.after.requires == ("bis-license",)
        assert [r.rule for r in c.now_blocking] == ["us-ear-2025-h20"] and c.lifted == ()
        assert c.recorded_packs["us-ear"] == "2025.03"
        assert c.from_candidate is True and c.direction == "stricter"
    # the same packs change nothing
    assert Replayer(store, before).run(dt.date.today()).changes == []


def test_replay_of_a_plan_flags_the_bought_chips(
    db_url: str, before: RuleSet, after: RuleSet
) -> None:
    sc = load_scenario(EXAMPLE / "buildout.yaml")
    plan = make_plan(sc, rules=before, solver="greedy")
    plan_id, entry = record_plan(
        Store(db_url), sc, plan, before, {"solver": "greedy"}, tenant="hz-cloud", actor="test"
    )
    assignments = plan.to_json()["assignments"]
    bought = [(a["workload"], a["stage"]) for a in assignments if a["bought"]]
    assert bought and len(bought) < len(assignments)
    assert all(a["chip"] == "H20" for a in assignments if a["bought"])
    result = Replayer(Store(db_url), after).run(dt.date.today())
    assert (result.plans, result.placements) == (1, len(assignments))
    assert [(c.ref["workload"], c.ref["stage"]) for c in result.changes] == bought
    for c in result.changes:
        assert c.kind == "plan" and c.seq == entry.seq and c.ref["plan_id"] == plan_id
        assert c.after.decision == "deny" and "us-ear-2025-h20" in c.after.rules
        assert c.from_candidate is None  # no separate baseline was given


def test_a_change_already_made_by_the_loaded_packs_is_told_apart(
    db_url: str, before: RuleSet, after: RuleSet, tmp_path: Path
) -> None:
    store = Store(db_url)
    record(store, before)
    # the deployment already runs the letter; the candidate only renames a pack version
    other = tmp_path / "sg-guidance"
    shutil.copytree(ROOT / "src/straits/rules/packs/sg-guidance", other)
    meta = other / "pack.yaml"
    meta.write_text(
        meta.read_text()
        .replace('version: "2025.04"', 'version: "2025.04-x"')
        .replace('  - version: "2025.04"', '  - version: "2025.04-x"')
    )
    candidate = ruleset((BEFORE, AFTER, other))
    result = Replayer(store, candidate, after).run(dt.date.today())
    assert result.changes and all(c.from_candidate is False for c in result.changes)


def test_since_and_tenant_select_entries(db_url: str, before: RuleSet, after: RuleSet) -> None:
    store = Store(db_url)
    record(store, before, tenant="a")
    record(store, before, tenant="b")
    today = dt.date.today()
    assert Replayer(store, after).run(today + dt.timedelta(days=1)).entries == 0
    assert Replayer(store, after).run(today).entries == 2
    only_b = Replayer(store, after).run(today, tenant="b")
    assert only_b.entries == 1 and {c.tenant for c in only_b.changes} == {"b"}


def test_an_entry_that_cannot_be_replayed_is_skipped_with_the_reason(
    db_url: str, before: RuleSet, after: RuleSet
) -> None:
    store = Store(db_url)
    with store.write() as s:  # a hand-made check entry whose request no longer validates
        ledger.append(
            s,
            tenant="t",
            actor="test",
            kind="check",
            body={
                "inputs": {"requests": [{"date": "2025-05-01", "action": "fly"}]},
                "result": {"decision": "allow"},
            },
        )
    record(store, before)
    result = Replayer(store, after).run(dt.date.today())
    assert [s.seq for s in result.skipped] == [1]
    assert "action" in result.skipped[0].reason
    assert result.decisions == len(REQUESTS) and result.changes


# --- the command ---------------------------------------------------------------------------------
@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def straits(*args: str, db: str) -> Ran:
    """The real command line, in this process (the CLI's imports are paid once)."""
    from straits.cli import app

    res = CliRunner(mix_stderr=False).invoke(typer.main.get_command(app), [*args, "--db", db])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return Ran(res.exit_code, res.stdout, res.stderr)


def test_cli_replay_records_itself_and_gates_with_exit_code(
    db_url: str, tmp_path: Path, before: RuleSet
) -> None:
    store = Store(db_url)
    record(store, before)
    since = dt.date.today().isoformat()
    args = ("rules", "replay", "--since", since, "--rules", str(BEFORE), "--packs", str(AFTER))
    p = straits(*args, "--json", "--record", "--exit-code", db=db_url)
    assert p.returncode == 4, p.stderr
    out = json.loads(p.stdout)
    changed = [r for r in REQUESTS if caught_by_letter(r)]
    assert out["changed"] == len(changed) and out["recorded"]["seq"] == 2
    assert {p["name"]: p["version"] for p in out["candidate"]}["us-ear"] == "2025.04.09"
    entry = ledger.get_entry(store, 2)
    assert entry is not None and entry.kind == "replay" and entry.tenant == "*"
    body = entry.content
    assert body["result"]["changed"] == len(changed) and body["date"] == since
    assert {p["name"]: p["version"] for p in body["rules"]["packs"]}["us-ear"] == "2025.04.09"
    assert ledger.verify(store).ok
    # a second replay does not replay the replay entry, and the table names the rule
    again = straits(*args, db=db_url)
    assert again.returncode == 0, again.stderr
    text = " ".join(again.stdout.split())
    assert "us-ear-2025-h20" in text and f"{len(changed)} would change" in text
    assert "Replayed 1 ledger entries" in text
    # ledger show's line for the replay: how many would change, of what was replayed
    from straits.cli.ledger_summary import summary as _summary

    assert f"{len(changed)} would change, of {len(REQUESTS)} decisions and 0 plan" in _summary(
        entry
    )


def test_cli_replay_refuses_an_altered_ledger(tmp_path: Path, before: RuleSet) -> None:
    db = f"sqlite:///{tmp_path / 'straits.db'}"
    store = Store(db)
    record(store, before)
    with store.engine.begin() as conn:  # someone rewrites a recorded answer
        conn.exec_driver_sql("UPDATE ledger SET body = replace(body, '\"deny\"', '\"allow\"')")
        conn.exec_driver_sql(
            "UPDATE ledger SET body = replace(body, '\"allow\"', '\"deny\"') WHERE seq = 1"
        )
    p = straits("rules", "replay", "--since", "2025-01-01", "--packs", str(AFTER), db=db)
    assert p.returncode == 2 and "does not verify" in p.stderr and "entry 1" in p.stderr
    assert p.stderr.startswith("error: --db:")  # the database is what is wrong, not --since


def test_cli_replay_bad_input(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'straits.db'}"
    Store(db).close()  # an empty log (one that is not there: test_hostile_ledger_tamper2)
    p = straits("rules", "replay", "--since", "2025-02-30", db=db)
    assert p.returncode == 2 and "--since" in p.stderr
    p = straits(
        "rules", "replay", "--since", "2025-01-01", "--packs", str(tmp_path / "nope"), db=db
    )
    assert p.returncode == 2 and "not found" in p.stderr
    empty = straits("rules", "replay", "--since", "2025-01-01", "--json", db=db)
    assert empty.returncode == 0 and json.loads(empty.stdout)["entries"] == 0


OVERFLOW = """
@id("team-overflow")
@title("Team: a rule whose arithmetic overflows on large volumes")
@citation("Team policy 3")
@confidence("V")
@effect("warn")
@effective_from("2020-01-01")
@reason("volumes times a trillion")
permit (principal, action, resource)
when { context.date >= datetime("2020-01-01") && context has data &&
       context.data.subjects * 1000000000000 > 0 };
"""


def test_a_decision_the_candidate_cannot_evaluate_is_skipped_not_fatal(
    db_url: str, tmp_path: Path
) -> None:
    """Cedar stops on integer overflow; the entry is listed as skipped with Cedar's reason,
    and the entries batched with it are still replayed."""
    store = Store(db_url)
    rules = ruleset()
    for subjects in (10, 10**10, 20):
        req = CheckRequest.model_validate(
            {
                "date": "2025-06-01",
                "action": "transfer-data",
                "tenant": {"hq": "SG"},
                "site": {"country": "SG", "operator_hq": "SG"},
                "data": {"origin": "CN", "classes": ["personal"], "subjects": subjects},
            }
        )
        record_check(store, rules, [req], rules.check(req).to_json(), tenant="t", actor="x")
    pack = tmp_path / "team"
    pack.mkdir()
    (pack / "pack.yaml").write_text("name: team\ntitle: t\nversion: '1'\n")
    (pack / "overflow.cedar").write_text(OVERFLOW)
    result = Replayer(store, ruleset((pack,))).run(dt.date.today())
    assert [s.seq for s in result.skipped] == [2] and "overflow" in result.skipped[0].reason
    assert result.decisions == 2 and result.changes == []


@pytest.mark.parametrize("start", [5, None, ["2025-04-20"]])
def test_a_plan_entry_with_a_time_that_is_no_text_is_skipped(
    db_url: str, before: RuleSet, after: RuleSet, start: object
) -> None:
    """A placement whose start is a number (a ledger replayed with --no-verify) was an
    AttributeError traceback; the entry is listed as skipped, the others replayed."""
    store = Store(db_url)
    sc = load_scenario(EXAMPLE / "buildout.yaml")
    plan = make_plan(sc, rules=before, solver="greedy")
    _, entry = record_plan(store, sc, plan, before, {"solver": "greedy"}, tenant="t", actor="x")
    body = json.loads(json.dumps(entry.content))
    body["result"]["plan"]["assignments"][0]["start"] = start
    with store.write() as s:
        ledger.append(s, tenant="t", actor="test", kind="plan", body=body)
    result = Replayer(store, after).run(dt.date.today())
    assert [s.seq for s in result.skipped] == [entry.seq + 1]
    assert "is not an ISO 8601 instant" in result.skipped[0].reason
    assert result.plans == 1


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ({"decision": "allow", "requires": [1, "a"]}, "`requires`"),
        ({"decision": "allow", "requires": 5}, "`requires`"),
        ({"decision": "deny", "reasons": [{"rule": ["x"], "effect": "deny"}]}, "`rule`"),
        ({"decision": "deny", "reasons": "x"}, "`reasons`"),
    ],
)
def test_a_recorded_answer_that_is_no_decision_skips_its_entry(
    db_url: str, before: RuleSet, after: RuleSet, answer: dict[str, Any], words: str
) -> None:
    """`requires: [1, "a"]` or a rule id that is a list in a recorded answer (a ledger replayed
    with --no-verify) was a TypeError traceback of the whole replay."""
    store = Store(db_url)
    with store.write() as s:
        ledger.append(
            s,
            tenant="t",
            actor="test",
            kind="check",
            body={"inputs": {"requests": REQUESTS[0]}, "result": answer},
        )
    record(store, before)
    result = Replayer(store, after).run(dt.date.today())
    assert [s.seq for s in result.skipped] == [1] and words in result.skipped[0].reason
    assert result.decisions == len(REQUESTS) and result.changes


def test_cli_exit_code_gates_on_entries_that_could_not_be_replayed(
    db_url: str, tmp_path: Path
) -> None:
    """A candidate whose rules cannot evaluate a recorded request (Cedar's integer overflow)
    skips the entry; `--exit-code` exited 0 and the table said no recorded decision would
    change, so a CI gate passed a pack that fails on every recorded decision."""
    store = Store(db_url)
    rules = ruleset()
    req = CheckRequest.model_validate(
        {
            "date": "2025-06-01",
            "action": "transfer-data",
            "tenant": {"hq": "SG"},
            "site": {"country": "SG", "operator_hq": "SG"},
            "data": {"origin": "CN", "classes": ["personal"], "subjects": 10**10},
        }
    )
    record_check(store, rules, [req], rules.check(req).to_json(), tenant="t", actor="x")
    pack = tmp_path / "team"
    pack.mkdir()
    (pack / "pack.yaml").write_text("name: team\ntitle: t\nversion: '1'\n")
    (pack / "overflow.cedar").write_text(OVERFLOW)
    args = ("rules", "replay", "--since", dt.date.today().isoformat(), "--packs", str(pack))
    p = straits(*args, "--json", "--exit-code", db=db_url)
    assert p.returncode == 4, p.stderr
    out = json.loads(p.stdout)
    assert out["changed"] == 0 and [s["seq"] for s in out["skipped"]] == [1]
    table = straits(*args, db=db_url)
    assert table.returncode == 0, table.stderr
    assert "No recorded decision would change" not in " ".join(table.stdout.split())
    # recorded, ledger show's line says so too (it read '0 would change, of 0 decisions')
    from straits.cli.ledger_summary import summary as _summary

    recorded = straits(*args, "--json", "--record", db=db_url)
    entry = ledger.get_entry(store, json.loads(recorded.stdout)["recorded"]["seq"])
    assert entry is not None and "1 entries could not be replayed" in _summary(entry)
