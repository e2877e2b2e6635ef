"""Plans as documents (straits/plandoc.py, cli/plan_source.py): what `straits plan -o json`
prints is what `export`, `impact`, `plan --recheck` and `plan --show` take back, by file, by
stdin or by recorded id, and an edited document is caught."""

from __future__ import annotations

import copy
import io
import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from conftest import H20_BEFORE
from straits.errors import InputError
from straits.plandoc import canonical, content_id, is_plan_document, read_document
from straits.store.ledger import canonical as ledger_canonical
from test_cli import one_line_error
from test_cli_conventions import run

ROOT = Path(__file__).resolve().parents[1]
H20 = ROOT / "examples" / "h20-2025.yaml"


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The shipped scenario's plan document (greedy: the same plan on every machine)."""
    p = run(
        "plan", str(ROOT / "examples" / "offshore-2025.yaml"), "-o", "json", "--solver", "greedy"
    )
    assert p.returncode == 0, p.stderr
    out: dict[str, Any] = json.loads(p.stdout)
    return out


@pytest.fixture
def doc_file(doc: dict[str, Any], tmp_path: Path) -> Path:
    f = tmp_path / "plan.json"
    f.write_text(json.dumps(doc))
    return f


def test_the_document_carries_its_id_digest_and_inputs(doc: dict[str, Any]) -> None:
    assert doc["id"] == content_id(doc, doc["inputs"]["scenario"], doc["inputs"]["options"])
    assert len(doc["digest"]) == 64 and doc["ledger_seq"] is None
    assert doc["inputs"]["scenario"]["name"] == doc["scenario"] == "offshore-2025"
    assert doc["inputs"]["options"]["solver"] == "greedy"
    for key in ("status", "assignments", "unplaced", "diagnosis", "total_cost_usd"):
        assert key in doc  # the plan contract, unchanged
    parsed = read_document(doc, "plan.json")
    assert parsed.id == doc["id"] and parsed.digest == doc["digest"]
    assert parsed.to_json() == doc


def test_the_canonical_form_is_the_ledgers(doc: dict[str, Any]) -> None:
    assert canonical(doc) == ledger_canonical(doc)
    from straits.store.ledger import digest

    assert doc["inputs"]["scenario_digest"] == digest(doc["inputs"]["scenario"])


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_canonical_json_agrees_with_the_ledger(value: Any) -> None:
    assert canonical(value) == ledger_canonical(value)


def _leaves(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _leaves(v, (*path, k))]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _leaves(v, (*path, i))]
    return [path]


@given(st.data())
def test_any_edit_to_a_signed_field_is_caught(doc: dict[str, Any], data: st.DataObject) -> None:
    leaves = [p for p in _leaves(doc) if p[0] not in ("id", "digest", "ledger_seq", "guidance")]
    path = data.draw(st.sampled_from(leaves))
    edited = copy.deepcopy(doc)
    node = edited
    for key in path[:-1]:
        node = node[key]
    old = node[path[-1]]
    node[path[-1]] = (
        (not old)
        if isinstance(old, bool)
        else (old + 1 if isinstance(old, int | float) else f"{old}x")
    )
    with pytest.raises(InputError):  # the digest, or a field check before it
        read_document(edited, "edited.json")


def test_an_edited_plan_is_used_once_its_id_and_digest_are_removed(doc: dict[str, Any]) -> None:
    edited = copy.deepcopy(doc)
    edited["assignments"][0]["cost_usd"] += 1
    with pytest.raises(InputError, match="digest"):
        read_document(edited, "x")
    del edited["id"], edited["digest"]
    again = read_document(edited, "x")
    # the cost is not part of what the plan decides... but it is in the plan's content
    assert again.digest != doc["digest"]


def test_content_id_ignores_what_the_search_took(doc: dict[str, Any]) -> None:
    other = {**doc, "notes": ["CP-SAT optimal in 9.9 s"], "gap": 0.5}
    opts, sc = doc["inputs"]["options"], doc["inputs"]["scenario"]
    assert content_id(other, sc, opts) == doc["id"]
    moved = copy.deepcopy(doc)
    moved["assignments"][0]["chips"] *= 2
    assert content_id(moved, sc, opts) != doc["id"]
    assert content_id(doc, sc, {**opts, "seed": 1}) != doc["id"]


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (lambda d: d.pop("inputs"), "inputs", "does not carry its scenario"),
        (lambda d: d["assignments"][0].update(site="atlantis"), "assignments[0].site", "atlantis"),
        (lambda d: d["assignments"][0].update(stage="nope"), "assignments[0].stage", "nope"),
        (lambda d: d["assignments"][0].update(chips=0), "assignments.0.chips", "greater"),
        (lambda d: d["assignments"][0].update(start="yesterday"), "assignments.0.start", "ISO"),
        (lambda d: d["inputs"]["scenario"].update(date="2025-13-01"), "inputs.scenario.date", ""),
        (lambda d: d.update(regime="martial"), "regime", ""),
        (lambda d: d.update(ledger_seq=-1), "ledger_seq", "positive"),
        # the rules are asked as of the plan's date: one edited to a day before a rule (the H20
        # letter) had a purchase its scenario's date forbids exported as lawful
        (lambda d: d.update(date="2025-03-01"), "date", "scenario's date"),
        (lambda d: d["inputs"]["scenario"].update(date="2025-03-01"), "date", "scenario's date"),
        # export's failover is the options lawful under the plan's regime: one edited from the
        # regime it was made under offered sites that regime forbids
        (lambda d: d.update(regime="ai-diffusion"), "regime", "made under"),
        (lambda d: d["inputs"]["options"].update(regime="ai-diffusion"), "regime", "made under"),
    ],
)
def test_a_broken_document_names_the_field(
    doc: dict[str, Any], change: Any, path: str, words: str
) -> None:
    bad = copy.deepcopy(doc)
    change(bad)
    bad.pop("digest", None)  # a field check, not the digest
    with pytest.raises(InputError) as exc:
        read_document(bad, "bad.json")
    assert str(exc.value).startswith("bad.json: ") and words in str(exc.value)
    assert (
        (exc.value.path or "")
        .replace("[", ".")
        .replace("]", "")
        .startswith(path.replace("[", ".").replace("]", ""))
    ), exc.value.path


def test_scenario_and_plan_are_told_apart(doc: dict[str, Any], example_path: Path) -> None:
    assert is_plan_document(doc)
    assert not is_plan_document(yaml.safe_load(example_path.read_text()))


# --- through the CLI -----------------------------------------------------------------------------
def test_export_takes_the_document_by_file_stdin_and_yaml(
    doc_file: Path, doc: dict[str, Any], tmp_path: Path
) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    p = run("export", str(doc_file), "--to", "all", "-o", str(a), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["plan_id"] == doc["id"]
    assert f"plan document {doc_file}" in p.stderr
    q = run("export", "-", "--to", "all", "-o", str(b), stdin=doc_file.read_text())
    assert q.returncode == 0, q.stderr
    y = tmp_path / "plan.yaml"
    y.write_text(run("plan", str(doc_file), "--show", "-o", "yaml").stdout)
    r = run("export", str(y), "--to", "all", "-o", str(c))
    assert r.returncode == 0, r.stderr
    files = {f.relative_to(a): f.read_text() for f in a.rglob("*") if f.is_file()}
    assert files and all(f.name != "straits-export.json" for f in files)
    for other in (b, c):
        assert {
            f.relative_to(other): f.read_text() for f in other.rglob("*") if f.is_file()
        } == files


def test_export_archives_are_reproducible_and_complete(doc_file: Path, tmp_path: Path) -> None:
    d = tmp_path / "dir"
    run("export", str(doc_file), "--to", "slurm", "-o", str(d))
    tgz = run_bytes("export", str(doc_file), "--to", "slurm", "-o", "-")
    assert tgz == run_bytes("export", str(doc_file), "--to", "slurm", "-o", "-")
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        names = {m.name.split("/", 1)[1]: m for m in tar.getmembers()}
        member = tar.extractfile(names.pop("straits-export.json"))
        assert member is not None
        manifest = json.loads(member.read())
        assert set(names) == {
            str(f.relative_to(d))
            for f in d.rglob("*")  # not DIR's own
            if f.is_file() and not f.name.startswith(".straits-export")
        }
        scripts = [n for n in names if n.startswith("slurm/") and n.endswith("/submit.sh")]
        assert scripts and all(names[n].mode == 0o755 for n in scripts)  # one per cluster
    assert manifest["targets"]["slurm"]["jobs"] > 0
    z = tmp_path / "jobs.zip"
    assert run("export", str(doc_file), "--to", "slurm", "-o", str(z)).returncode == 0
    with zipfile.ZipFile(z) as zf:
        assert {n.split("/", 1)[1] for n in zf.namelist()} == {*names, "straits-export.json"}


def run_bytes(*args: str) -> bytes:
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "straits", *args], capture_output=True, timeout=600)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_record_keeps_the_content_id_and_records_once(
    tmp_path: Path, example_path: Path, doc: dict[str, Any]
) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    first = run(
        "plan", str(example_path), "--solver", "greedy", "--record", "-o", "json", "--db", db
    )
    out = json.loads(first.stdout)
    assert out["id"] == doc["id"] and out["ledger_seq"] == 1
    again = run("plan", str(example_path), "--solver", "greedy", "--record", "-o", "id", "--db", db)
    assert again.stdout.strip() == doc["id"] and "already recorded" in again.stderr
    entries = json.loads(run("ledger", "show", "--json", "--db", db).stdout)
    assert len(entries) == 1
    # the recorded plan read back by id (or prefix) is the same document
    shown = json.loads(run("plan", doc["id"][:8], "--show", "-o", "json", "--db", db).stdout)
    assert {k: v for k, v in shown.items() if k not in ("ledger_seq", "digest", "notes")} == {
        k: v for k, v in out.items() if k not in ("ledger_seq", "digest", "notes")
    }
    assert shown["ledger_seq"] == 1


def test_another_tenant_recording_the_same_plan_gets_its_own_record(
    tmp_path: Path, example_path: Path, doc: dict[str, Any]
) -> None:
    """The same plan recorded under tenant b after tenant a: b's own record and ledger entry
    (before, b was handed a's plan id and a's entry number, and b's ledger lacked it);
    recording it again under b finds b's."""
    db = f"sqlite:///{tmp_path / 't.db'}"
    plan = ["plan", str(example_path), "--solver", "greedy", "--record", "-o", "json", "--db", db]
    a = json.loads(run(*plan, "--tenant", "a").stdout)
    b = json.loads(run(*plan, "--tenant", "b").stdout)
    assert a["id"] == doc["id"] and b["id"] != a["id"]
    assert (a["ledger_seq"], b["ledger_seq"]) == (1, 2)
    again = json.loads(run(*plan, "--tenant", "b").stdout)
    assert (again["id"], again["ledger_seq"]) == (b["id"], 2)
    entries = json.loads(run("ledger", "show", "--json", "--db", db).stdout)
    assert [e["tenant"] for e in entries] == ["a", "b"]
    for tenant, mine in (("a", a), ("b", b)):
        own = json.loads(run("ledger", "show", "--json", "--tenant", tenant, "--db", db).stdout)
        assert [e["body"]["result"]["plan_id"] for e in own] == [mine["id"]]


def test_replanning_a_document_uses_its_options(doc_file: Path) -> None:
    p = run("plan", str(doc_file), "-o", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["solver"] == "greedy"  # the document's, not the default
    assert "planning its scenario again" in p.stderr
    q = run("plan", str(doc_file), "-o", "json", "--objective", "time")
    assert json.loads(q.stdout)["inputs"]["options"] == {
        **json.loads(p.stdout)["inputs"]["options"],
        "objective": "time",
    }


def test_recheck_and_impact_read_the_same_plan(tmp_path: Path) -> None:
    """A plan of 2025-04-08 made with the rules of that day (conftest.H20_BEFORE): re-checked
    with them the same day, nothing changes; with the shipped rules, which have the H20 letter
    of 2025-04-09, its purchase is refused the same day (the chips ship after) and later."""
    plan = tmp_path / "h20.json"
    before = ("--rules", str(H20_BEFORE))
    plan.write_text(run("plan", str(H20), "-o", "json", "--solver", "greedy", *before).stdout)
    same_day = run("plan", str(plan), "--recheck", "--date", "2025-04-08", "-o", "json", *before)
    assert same_day.returncode == 0 and json.loads(same_day.stdout)["changes"] == []
    known = run("plan", str(plan), "--recheck", "--date", "2025-04-08", "-o", "json")
    assert known.returncode == 4, known.stderr
    assert {r["rule"] for c in json.loads(known.stdout)["changes"] for r in c["rules"]} == {
        "us-ear-2025-h20"
    }
    after = run("plan", str(plan), "--recheck", "--date", "2025-04-10", "-o", "json")
    assert after.returncode == 4, after.stderr
    checked = json.loads(after.stdout)
    assert checked["blocking"] and "us-ear-2025-h20" in {
        r["rule"] for c in checked["changes"] for r in c["rules"]
    }
    via_impact = json.loads(
        run("impact", "--date", "2025-04-10", "--plan", str(plan), "--no-replan", "--json").stdout
    )["plans"][0]
    assert via_impact["changes"] == checked["changes"]
    assert via_impact["plan_id"] == json.loads(plan.read_text())["id"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("plan", "missing.yaml"), ("missing.yaml", "file not found")),
        (("export", "dir/plan.json", "--to", "slurm", "-o", "x"), ("dir/plan.json", "not found")),
        (("plan", "--show", "0123abcd"), ("0123abcd", "not a file, nor a recorded plan")),
        (("plan", "ab"), ("too short",)),
    ],
)
def test_what_is_neither_file_nor_plan_exits_2(
    args: tuple[str, ...], words: tuple[str, ...], tmp_path: Path
) -> None:
    from straits.store import Store

    db = f"sqlite:///{tmp_path / 'e.db'}"
    Store(db).close()  # a database without the plan (one that is not there is exit 1, unmade)
    p = run("-q", *args, "--db", db) if args[0] == "plan" else run("-q", *args)
    one_line_error(p, *words)


def test_show_and_recheck_need_a_plan(example_path: Path) -> None:
    one_line_error(run("-q", "plan", str(example_path), "--show"), "is a scenario, not a plan")
    one_line_error(run("-q", "plan", str(example_path), "--show", "--recheck"), "two things")


def test_a_tampered_document_is_refused_by_every_command(
    doc: dict[str, Any], tmp_path: Path
) -> None:
    bad = copy.deepcopy(doc)
    bad["assignments"][0]["site"] = bad["assignments"][-1]["site"]
    bad["total_cost_usd"] = 1.0
    f = tmp_path / "tampered.json"
    f.write_text(json.dumps(bad))
    for args in (
        ("export", str(f), "--to", "slurm", "-o", str(tmp_path / "o")),
        ("plan", str(f), "--recheck"),
        ("impact", "--date", "2025-06-02", "--plan", str(f)),
    ):
        one_line_error(run("-q", *args), str(f), "digest", "changed after it was made")


# --- hostile input -------------------------------------------------------------------------------
HOSTILE = {
    "nested": "[" * 50_000 + "]" * 50_000,
    "nested-yaml": "a:\n" + "".join("  " * i + "- \n" for i in range(1, 3000)),
    "truncated-json": '{"status": "optimal", "assignments": [{"workload": "w"',
    "truncated-yaml": "straits: 1\nname: x\nsites: [{id: s, pools: [",
    "scalar": "42",
    "list": "[1, 2, 3]",
    "empty": "   \n",
}


READERS = (
    ("plan", "-"),
    ("export", "-", "--to", "slurm", "-o", "OUT"),
    ("impact", "--date", "2025-06-01", "--plan", "-"),
)


@pytest.mark.parametrize(
    ("name", "reader"), [(name, READERS[i % len(READERS)]) for i, name in enumerate(HOSTILE)]
)
def test_hostile_stdin_is_a_clean_exit_2(
    name: str, reader: tuple[str, ...], tmp_path: Path
) -> None:
    """Each input through one of the three readers of `-` (they share the resolver)."""
    args = [str(tmp_path / "o") if a == "OUT" else a for a in reader]
    one_line_error(run("-q", *args, stdin=HOSTILE[name]), "<stdin>")
    assert not (tmp_path / "o").exists()


def test_binary_stdin_is_a_clean_exit_2() -> None:
    import subprocess
    import sys

    p = subprocess.run(
        [sys.executable, "-m", "straits", "plan", "-"],
        capture_output=True,
        input=bytes(range(256)) * 10,
        timeout=300,
    )
    assert p.returncode == 2 and b"not UTF-8" in p.stderr and b"Traceback" not in p.stderr


def test_concurrent_records_of_one_plan_append_once(tmp_path: Path, example_path: Path) -> None:
    import subprocess
    import sys

    db = f"sqlite:///{tmp_path / 'c.db'}"
    args = [
        sys.executable,
        "-m",
        "straits",
        "plan",
        str(example_path),
        "--solver",
        "greedy",
        "--record",
        "-o",
        "id",
        "--db",
        db,
    ]
    procs = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert len({o.strip() for o, _ in outs}) == 1
    assert len(json.loads(run("ledger", "show", "--json", "--db", db).stdout)) == 1
    assert run("ledger", "verify", "--db", db).returncode == 0


def test_a_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from straits.cli.common import write_file

    target = tmp_path / "out.tar.gz"
    target.write_bytes(b"old")

    def boom(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(InputError):  # said as the option's error: exit 2, the path named
        write_file(target, b"new")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.tar.gz"]
