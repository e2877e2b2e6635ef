"""Hostile plan documents through every command that reads one back (`report`, `plan --show`,
`plan --recheck`, `export`, `impact --plan`): a plan document is a file anyone may edit (an
edited plan without `id` and `digest` is a new plan), so a figure given as text, a diagnosis
given as a number or an assignment ending before it starts is exit 2 naming the field, with
nothing written, never a traceback. The cases run in one process through
``hostile_harness.py`` (the same limits as the hostile corpus)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hostile_corpus import case
from test_cli_conventions import run

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: (id, path in the document, value, words the error carries)
MUTATIONS: list[tuple[str, str, Any, tuple[str, ...]]] = [
    ("cost-text", "total_cost_usd", "x", ("total_cost_usd",)),
    ("cost-list", "total_cost_usd", [], ("total_cost_usd",)),
    ("cost-nan", "total_cost_usd", "NaN", ("total_cost_usd",)),
    ("cost-bool", "total_cost_usd", True, ("total_cost_usd",)),
    ("makespan-text", "makespan_hours", "x", ("makespan_hours",)),
    ("energy-dict", "energy_mwh", {"a": 1}, ("energy_mwh",)),
    ("gap-list", "gap", [1], ("gap",)),
    ("baseline-text", "baseline_usd", "x", ("baseline_usd",)),
    ("notes-number", "notes", 5, ("notes",)),
    ("why-not-text", "why_not", "x", ("why_not",)),
    ("assignment-cost-text", "assignments.0.cost_usd", "x", ("assignments[0].cost_usd",)),
    ("assignment-chip-hours-list", "assignments.0.chip_hours", [], ("assignments[0].chip_hours",)),
    ("assignment-late-text", "assignments.0.late_hours", "x", ("assignments[0].late_hours",)),
    ("assignment-requires-number", "assignments.0.requires", 5, ("assignments[0].requires",)),
    # null where every plan writes a number: the report, --recheck and export summed it (a
    # TypeError traceback; found by the hostile pass atk23)
    ("assignment-cost-null", "assignments.0.cost_usd", None, ("assignments[0].cost_usd",)),
    ("assignment-egress-null", "assignments.0.egress_usd", None, ("assignments[0].egress_usd",)),
    ("assignment-capex-null", "assignments.0.capex_usd", None, ("assignments[0].capex_usd",)),
    ("assignment-late-null", "assignments.0.late_hours", None, ("assignments[0].late_hours",)),
    ("assignment-bought-null", "assignments.0.bought", None, ("assignments[0].bought",)),
    (
        "assignment-warning-dict",
        "assignments.0.warnings.0",
        {"a": 1},
        ("assignments[0].warnings[0]",),
    ),
    (
        "assignment-ends-first",
        "assignments.0.end",
        "2025-05-01T00:00:00Z",
        ("assignments[0]", "before it starts"),
    ),
    ("assignment-no-zone", "assignments.0.end", "2025-09-25", ("assignments[0].end",)),
    ("assignment-year-1", "assignments.0.start", "0001-01-01T00:00:00Z", ("assignments[0].start",)),
    ("assignment-year-9999", "assignments.0.end", "9999-12-31T23:59:59Z", ("assignments[0].end",)),
    # an offset that takes the time out of Python's years: astimezone raised OverflowError, a
    # traceback here and a 500 on the API (hostile pass atk79)
    (
        "assignment-before-year-1-in-utc",
        "assignments.0.start",
        "0001-01-01T00:00:00+01:00",
        ("assignments[0].start", "outside the dates Straits plans"),
    ),
    (
        "assignment-after-year-9999-in-utc",
        "assignments.0.end",
        "9999-12-31T23:59:59-01:00",
        ("assignments[0].end", "outside the dates Straits plans"),
    ),
    ("date-9999", "date", "9999-12-31", ("date",)),
    ("diagnosis-stage-number", "diagnosis.0.stage", 5, ("diagnosis[0].stage",)),
    ("diagnosis-workload-list", "diagnosis.0.workload", [], ("diagnosis[0].workload",)),
    ("diagnosis-options-text", "diagnosis.0.options", "x", ("diagnosis[0].options",)),
    ("diagnosis-lost-text", "diagnosis.0.lost.cost", "x", ("diagnosis[0].lost",)),
    ("diagnosis-rule-number", "diagnosis.1.rules.0.rule", 5, ("diagnosis[1].rules[0].rule",)),
    ("timings-text", "timings.elapsed_s", "x", ("timings.elapsed_s",)),
    ("timings-phase-list", "timings.phases.load", [], ("timings.phases",)),
    # terminal escapes (clipboard, clear screen) in text `plan --show` prints
    ("escape-in-note", "notes", ["ok\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J"], ("notes[0]", "control")),
    ("escape-in-summary", "diagnosis.0.summary", "\x1b[2J", ("diagnosis[0].summary",)),
    ("escape-in-warning", "warnings.0.text", "\x9b2J", ("warnings[0].text",)),
    ("escape-in-layout", "assignments.0.layout", "\x1b[31m", ("assignments[0].layout",)),
    ("escape-in-lost-reason", "diagnosis.0.lost", {"\x1b[2J": 1}, ("diagnosis[0].lost",)),
    # the id is printed ("read plan document ... (plan ID ...)") and names exported files
    ("escape-in-id", "id", "ab\x1b[2Jcd", ("id",)),
    ("newline-in-id", "id", "ab\ntouch PWNED\n#", ("id",)),
    ("space-in-id", "id", "ab cd", ("id",)),
    # figures a report showed as they were written (atk87): "$-5", a high end below the cost
    ("assignment-cost-negative", "assignments.0.cost_usd", -5.0, ("assignments[0].cost_usd",)),
    ("total-negative", "total_cost_usd", -5.0, ("total_cost_usd",)),
    ("high-below-cost", "total_cost_usd_high", 1.0, ("total_cost_usd_high",)),
    # shown and exported as they said (a hostile-input review, 2026-12-06)
    ("status-bogus", "status", "bogus", ("status",)),
    ("status-infeasible-all-placed", "status", "infeasible", ("status", "no stage is unplaced")),
    ("decision-deny", "assignments.0.decision", "deny", ("assignments[0].decision",)),
    # exported as STRAITS_TP=3 ... on 2,048 chips, or with a part dropped (a fresh-eye attack)
    ("layout-parts", "assignments.0.layout", "TP3 PP7 DP5 EP0 ZeRO-9", ("assignments[0].layout",)),
    ("layout-product", "assignments.0.layout", "TP8 PP1 DP1 ZeRO-1", ("assignments[0].layout",)),
    (
        "layout-huge",
        "assignments.0.layout",
        "TP" + "9" * 25 + " PP1 DP1",
        ("assignments[0].layout",),
    ),
    ("layout-twice", "assignments.0.layout", "TP4 TP4 PP1 DP512", ("assignments[0].layout",)),
    ("layout-zero", "assignments.0.layout", "TP4 PP1 DP512 ZeRO-9", ("assignments[0].layout",)),
    (
        "layout-recompute",
        "assignments.0.layout",
        "TP4 PP1 DP512 recompute=yes",
        ("assignments[0].layout",),
    ),
]
#: (id, change to the whole document, words the error carries): plans that contradict
#: themselves or their scenario
EDITS: list[tuple[str, Any, tuple[str, ...]]] = [
    (
        "stage-placed-twice",
        lambda d: {**d, "assignments": d["assignments"] * 2},
        ("assignments[3]", "placed twice"),
    ),
    (
        "stage-placed-and-unplaced",
        lambda d: {**d, "unplaced": [{"workload": "chat-72b", "stage": "sft"}]},
        ("unplaced[0]", "placed already"),
    ),
    (
        "unplaced-unknown-stage",
        lambda d: {**d, "unplaced": [{"workload": "chat-72b", "stage": "nope"}]},
        ("unplaced[0]", "no stage"),
    ),
    (
        "unplaced-unknown-workload",
        lambda d: {**d, "unplaced": [{"workload": "nope", "stage": "sft"}]},
        ("unplaced[0]", "no stage"),
    ),
    (
        "feasible-with-a-stage-unplaced",
        lambda d: {
            **d,
            "assignments": d["assignments"][:-1],
            "unplaced": [
                {"workload": a["workload"], "stage": a["stage"]} for a in d["assignments"][-1:]
            ],
        },
        ("status", "a stage is unplaced"),
    ),
    # "0 of 3 stages placed, none unplaced" beside the plan's cost (atk87)
    (
        "stages-dropped",
        lambda d: {**d, "assignments": []},
        ("unplaced", "neither placed nor unplaced"),
    ),
]
COMMANDS: dict[str, list[str]] = {
    "report": ["report", "{FILE}", "-o", "{OUT}"],
    "show": ["plan", "{FILE}", "--show"],
    "recheck": ["plan", "{FILE}", "--recheck", "--date", "2025-07-01"],
    "export": ["export", "{FILE}", "--to", "all", "-o", "{OUT}"],
    "impact": ["impact", "--plan", "{FILE}", "--date", "2025-07-01"],
}


def _set(doc: Any, path: str, value: Any) -> Any:
    doc = copy.deepcopy(doc)
    target = doc
    parts: list[Any] = [int(p) if p.isdigit() else p for p in path.split(".")]
    for p in parts[:-1]:
        target = target[p]
    target[parts[-1]] = value
    return doc


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    """The shipped scenario's plan document without `id` and `digest` (a new plan)."""
    p = run(
        "plan", str(ROOT / "examples" / "offshore-2025.yaml"), "-o", "json", "--solver", "greedy"
    )
    assert p.returncode == 0, p.stderr
    doc: dict[str, Any] = json.loads(p.stdout)
    del doc["id"], doc["digest"]
    return doc


def _cases(base: dict[str, Any], out: Path) -> list[dict[str, Any]]:
    cases = [
        case(
            f"{name}:unchanged",
            [a.replace("{OUT}", str(out / f"ok-{name}.html")) for a in argv],
            exit=0,
            files={"FILE": json.dumps(base)},
        )
        for name, argv in COMMANDS.items()
        if name in ("report", "show")
    ]
    edited = [(mid, _set(base, path, value), words) for mid, path, value, words in MUTATIONS]
    edited += [(mid, edit(copy.deepcopy(base)), words) for mid, edit, words in EDITS]
    for mid, doc, words in edited:
        text = json.dumps(doc)
        for name, argv in COMMANDS.items():
            target = out / (f"{mid}-{name}" + (".html" if name == "report" else ""))
            cases.append(
                case(
                    f"{mid}:{name}",
                    [a.replace("{OUT}", str(target)) for a in argv],
                    words=words,
                    files={"FILE": text},
                )
            )
    return cases


def test_hostile_plan_documents(base: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    cases = _cases(base, out)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    p = subprocess.run(
        [
            sys.executable,
            str(HERE / "hostile_harness.py"),
            str(tmp_path / "cases.json"),
            str(tmp_path / "results.json"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    results = {r["id"]: r for r in json.loads((tmp_path / "results.json").read_text())}
    failures = []
    for c in cases:
        r = results[c["id"]]
        lines = [ln for ln in r["stderr"].splitlines() if ln.strip()]
        ok = (
            r["escaped"] is None
            and r["exit"] == c["exit"]
            and "Traceback" not in r["stderr"] + r["stdout"]
        )
        if ok and c["exit"] == 2:
            ok = (
                len(lines) == 1
                and lines[0].startswith("error:")
                and not r["stdout"].strip()
                and all(w.lower() in lines[0].lower() for w in c["words"])
            )
        if not ok:
            failures.append((c["id"], r["exit"], (r["escaped"] or r["stderr"])[-300:]))
    assert failures == []
    # nothing half-written: only the two unchanged runs wrote anything
    assert sorted(p.name for p in out.iterdir()) == ["ok-report.html"]


def test_a_bad_field_is_named_with_its_line(base: dict[str, Any], tmp_path: Path) -> None:
    """`error: FILE:LINE: FIELD: ...`, as for scenarios: the line of the bad field in the
    document as written (JSON indented, or YAML)."""
    doc = _set(base, "assignments.1.cost_usd", "x")
    text = json.dumps(doc, indent=1)
    f = tmp_path / "p.json"
    f.write_text(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if '"cost_usd": "x"' in ln)
    p = run("plan", str(f), "--show")
    assert p.returncode == 2, p.stderr
    assert f"{f}:{line}: assignments[1].cost_usd: " in p.stderr, p.stderr
