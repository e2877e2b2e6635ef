"""What the CLI prints as documents, as a user of `kubectl -o yaml` reads it: YAML with no
anchors or aliases (the document as its JSON spells it out), through the real process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from straits.cli.output import to_yaml
from test_cli_conventions import run
from test_rules_engine import DESIGN_REQUEST


def _no_aliases(text: str) -> None:
    events = list(yaml.parse(text, Loader=yaml.SafeLoader))
    assert not [e for e in events if isinstance(e, yaml.AliasEvent)]
    assert not [e for e in events if getattr(e, "anchor", None)]


def test_a_shared_object_is_written_out_twice() -> None:
    shared: dict[str, Any] = {"enacted": "sg/H100", "ai-diffusion": "unplaced"}
    doc = {"stages": [{"placements": shared}], "moved": [{"placements": shared}]}
    text = to_yaml(doc)
    _no_aliases(text)
    assert yaml.safe_load(text) == json.loads(json.dumps(doc))


def test_scenario_generate_writes_no_aliases(tmp_path: Path) -> None:
    r = run("scenario", "generate", "--workloads", "0", "--sites", "20", "-o", "-")
    assert r.returncode == 0, r.stderr
    _no_aliases(r.stdout)
    r2 = run("scenario", "validate", "-", stdin=r.stdout)
    assert r2.returncode == 0, r2.stderr


def test_export_refuses_an_archive_it_does_not_write(tmp_path: Path) -> None:
    from test_cli_conventions import ROOT

    example = str(ROOT / "examples" / "offshore-2025.yaml")
    for name in ("jobs.tar.bz2", "jobs.TAR.XZ", "jobs.7z", "jobs.gz"):
        r = run("export", example, "--to", "slurm", "-o", str(tmp_path / name))
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith("error: -o:")
        assert not (tmp_path / name).exists()
    existing = tmp_path / "old.gz"  # a directory of that name already: written into
    existing.mkdir()
    r = run("export", example, "--to", "slurm", "-o", str(existing), "-q")
    assert r.returncode == 0, r.stderr
    assert (existing / "slurm").is_dir()


def test_ledger_export_refuses_a_compressed_name(tmp_path: Path) -> None:
    env = {"STRAITS_DATABASE_URL": f"sqlite:///{tmp_path / 'l.db'}"}
    made = run("check", "--record", stdin=json.dumps(DESIGN_REQUEST), env=env)  # one entry
    assert made.returncode == 0, made.stderr
    r = run("ledger", "export", "-o", str(tmp_path / "ledger.jsonl.gz"), env=env)
    assert r.returncode == 2 and r.stderr.startswith("error: -o:"), r.stderr
    assert not (tmp_path / "ledger.jsonl.gz").exists()
    r = run("ledger", "export", "-o", str(tmp_path / "ledger.jsonl"), env=env)
    assert r.returncode == 0, r.stderr


def test_serve_on_a_taken_port_fails_before_touching_the_database(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        db = tmp_path / "s.db"
        r = run("serve", "--port", port, "--db", f"sqlite:///{db}")
    assert r.returncode == 1 and r.stderr.startswith("error: "), r.stderr
    assert not db.exists()
    r = run("serve", "--host", "no-such-host.invalid", "--db", f"sqlite:///{db}")
    assert r.returncode == 2 and r.stderr.startswith("error: --host:"), r.stderr
    assert not db.exists()


def test_rules_test_yaml_is_the_document_its_json_is() -> None:
    """A case's request holds dates (`date: 2025-06-01` in its pack): `-o yaml` wrote them as
    YAML dates, which a reader gets back as dates where the JSON has strings."""
    as_json = run("rules", "test", "-o", "json")
    as_yaml = run("rules", "test", "-o", "yaml")
    assert as_json.returncode == as_yaml.returncode == 0, as_json.stderr + as_yaml.stderr
    doc = json.loads(as_json.stdout)
    assert any("date" in c["request"] for c in doc["cases"])  # the cases that showed it
    assert yaml.safe_load(as_yaml.stdout) == doc


def test_every_yaml_document_is_its_json_document(monkeypatch: pytest.MonkeyPatch) -> None:
    """`emit` writes the JSON document as YAML: dates and tuples come back as the JSON reader
    gets them."""
    import datetime as dt

    from straits.cli import output

    doc = {"day": dt.date(2025, 6, 1), "at": dt.datetime(2025, 6, 1, 12), "pair": (1, "2")}
    out: list[str | bytes] = []
    monkeypatch.setattr(output, "write_stdout", out.append)
    output.emit(doc, "yaml")
    output.emit(doc, "json")
    as_yaml, as_json = (str(x) for x in out)
    assert yaml.safe_load(as_yaml) == json.loads(as_json)
    assert yaml.safe_load(as_yaml)["day"] == "2025-06-01"
