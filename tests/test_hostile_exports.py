"""Hostile names against what `straits export` writes and prints, beyond the scenario checks
(tests/hostile_corpus_cli.py refuses the names themselves: ``targets:*`` and ``empty-path:*``).

Defence in depth: a scheduler name that got past the model (an older stored plan, a caller of
the Python API that builds a site with ``model_construct``) still never runs as shell code in a
generated script, and never breaks the summary the CLI prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from straits.export import export_input, exporter
from straits.export import slurm as slurm_mod
from straits.export.base import ExportInput, StageJob
from straits.loading import load_scenario
from straits.model.targets import SlurmSite
from straits.plan import make_plan
from straits.rules import RuleSet

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "offshore-2025.yaml"
#: a 1B dense model: quick to estimate, fits anywhere
SMALL = {
    "params": 1.0e9,
    "active_params": 1.0e9,
    "layers": 24,
    "d_model": 2048,
    "heads": 16,
    "seq_len": 4096,
}

#: cluster names a shell would act on inside double quotes
EVIL_CLUSTERS = [
    "j$(touch PWNED)",
    "j`touch PWNED`",
    'j"; touch PWNED; echo "',
    "j'$(touch PWNED)'",
    "j${HOME}",
]


@pytest.fixture(scope="module")
def inp(rules: RuleSet) -> ExportInput:
    sc = load_scenario(EXAMPLE)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    return export_input(sc, plan, rules, plan_id="hostile-plan", run="true")


@pytest.mark.parametrize("evil", EVIL_CLUSTERS)
def test_a_held_stage_message_never_runs_a_cluster_name(
    evil: str, inp: ExportInput, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = slurm_mod.slurm_site

    def hostile(job: StageJob) -> SlurmSite | None:
        s = real(job)
        # every site its own cluster, so a stage after another site's stage is held
        return (
            None if s is None else s.model_copy(update={"cluster": f"{evil}-{job.planned.site.id}"})
        )

    monkeypatch.setattr(slurm_mod, "slurm_site", hostile)
    res = exporter("slurm").render(inp)
    held = [
        ln
        for text in res.files.values()
        for ln in text.splitlines()
        if ln.startswith("say ") and "is held until" in ln
    ]
    assert held, "the example plan holds a stage whose predecessor runs on another cluster"
    for line in held:
        p = subprocess.run(
            ["bash", "-c", f"say() {{ printf '%s\\n' \"$*\"; }}; FIRST=4242; {line}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        assert not (tmp_path / "PWNED").exists()
        assert evil in p.stdout  # printed as written, not expanded
        assert p.stdout.rstrip().endswith("scontrol release 4242")  # $FIRST still expands


def _straits(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "COLUMNS": "1000"}  # one line per row: paths are not wrapped
    return subprocess.run(
        [sys.executable, "-m", "straits", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["export", str(EXAMPLE), "--to", "slurm", "--run", "true", "-o", ""],
        ["market", "sweep", "--runs", "2", "--firms", "5", "--backend", "inline", "--out", ""],
        ["demo", "--report", "", "--db", "sqlite://"],
        ["ledger", "keygen", "-o", ""],
        # nothing listens at port 1: refused before --out (market-sweep) is created
        ["market", "sweep", "--runs", "2", "--ray-address", "127.0.0.1:1"],
    ],
    ids=["export", "market-sweep", "demo-report", "keygen", "ray-address-closed"],
)
def test_a_refused_output_writes_nothing_in_the_current_directory(
    args: list[str], tmp_path: Path
) -> None:
    p = _straits(*args, cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_summary_prints_markup_in_paths_and_names_as_text(tmp_path: Path) -> None:
    out = tmp_path / "jobs[/]x[bold]"
    p = _straits(
        "export", str(EXAMPLE), "--to", "slurm", "--run", "true", "-o", str(out), cwd=tmp_path
    )
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert "jobs[/]x[bold]" in p.stdout
    assert any(out.rglob("submit.sh"))


@pytest.mark.parametrize("text", ["x[/]y", "a[/dim]b", "[bold]c[/]", "d[/"])
def test_a_message_holding_markup_prints_instead_of_failing(text: str) -> None:
    """A path, URL or tenant holding ``[/]`` made Rich raise MarkupError (a traceback after the
    work was done); the CLI's consoles print such a message as plain text."""
    from straits.cli.common import _console

    c = _console()
    with c.capture() as cap:
        c.print(f"wrote {text}")
    assert "wrote" in cap.get()


def test_tokens_and_notes_naming_markup_do_not_fail(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'l.db'}"
    p = _straits(
        "tokens", "create", "--tenant", "t[/]", "--role", "viewer", "--db", db, cwd=tmp_path
    )
    assert p.returncode == 0, p.stderr
    assert "t[/]" in p.stderr
    p = _straits("tokens", "list", "--db", db, cwd=tmp_path)
    assert p.returncode == 0 and "t[/]" in p.stdout, p.stderr


def test_a_stage_of_chips_that_do_not_fill_nodes_says_it_is_rounded_up(rules: RuleSet) -> None:
    """A fine-tune planned (and priced) at 9 chips is 2 nodes of 8 on every target: SkyPilot's
    export said so, Slurm, Kubernetes and Karmada did not, and the sbatch script's comment
    said `9 chips = 2 node(s) x 8`."""
    import yaml

    doc = yaml.safe_load(EXAMPLE.read_text())
    w = doc["workloads"][0]
    doc["workloads"] = [w]
    w["model"] = dict(SMALL)
    w["stages"] = [{"id": "ft", "kind": "finetune", "chips": 9, "datasets": ["web-crawl"]}]
    from straits.loading import parse_scenario

    sc = parse_scenario(doc, source="nine chips")
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    (placed,) = plan["assignments"]
    assert placed["chips"] == 9
    inp = export_input(sc, plan, rules, plan_id="nine", run="true")
    note = f"{w['id']}/ft: 9 chips rounded up to 2 nodes of 8 (16 chips)"
    for target in ("slurm", "kubernetes", "karmada", "skypilot"):
        res = exporter(target).render(inp)
        assert note in res.notes, (target, res.notes)
    (script,) = [t for p, t in exporter("slurm").render(inp).files.items() if p.endswith("sbatch")]
    assert "9 chips planned, asked as 2 node(s) x 8" in script
    assert "#SBATCH --nodes=2" in script


def test_two_sites_naming_one_local_queue_with_different_cluster_queues_are_refused(
    rules: RuleSet,
) -> None:
    """Two sites on one Kubernetes cluster, one namespace and queue, but different
    ClusterQueues: both wrote kubernetes/<cluster>/kueue.<ns>.<queue>.yaml and the site exported
    last silently decided where the other's stages were queued."""
    import yaml

    from straits.errors import InputError
    from straits.loading import parse_scenario

    doc = yaml.safe_load(EXAMPLE.read_text())
    for site in doc["sites"]:
        k = site["targets"]["kubernetes"]
        k.update(cluster="shared", namespace="training", queue="training")
        k["cluster_queue"] = f"cq-{site['id']}"
    sc = parse_scenario(doc, source="shared")
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    assert len({a["site"] for a in plan["assignments"]}) > 1
    inp = export_input(sc, plan, rules, plan_id="shared", run="true")
    with pytest.raises(InputError) as exc:
        exporter("kubernetes").render(inp)
    assert exc.value.path is not None
    assert exc.value.path.endswith(".targets.kubernetes.cluster_queue")
    # one ClusterQueue for the LocalQueue is a cluster shared, and exports
    for site in doc["sites"]:
        site["targets"]["kubernetes"]["cluster_queue"] = "cq"
    sc = parse_scenario(doc, source="shared")
    inp = export_input(sc, plan, rules, plan_id="shared", run="true")
    files = exporter("kubernetes").render(inp).files
    assert "clusterQueue: cq\n" in files["kubernetes/shared/kueue.training.training.yaml"]
