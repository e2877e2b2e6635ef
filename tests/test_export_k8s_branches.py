"""Kubernetes' ``apply.sh`` applies each branch of a workload's DAG on its own (k8s30).

It ran one background job per workload, its stages one after another: with ``report`` after
``eval`` and ``serve-intl`` after ``sft`` (both branches after the pre-train), ``eval``
running past its planned end held the service back until ``eval`` completed, though the
service waits only for ``sft``. Each chain of stages (a stage after the one before) is a job of
its own now; a stage after another branch's stage waits for that branch to apply it (a marker
file) and for it to complete, and a branch that stops stops the stages after it there too."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

from straits.export import export_input, exporter
from straits.export.base import ExportInput
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.rules import RuleSet
from test_export_start_wait import _run, _sane, _started
from test_hostile_export_exp30 import _diamond

W = "chat-72b"


def _branches() -> Scenario:
    """The diamond of exp30 (``eval`` and ``sft`` after the pre-train) and ``report`` after
    ``eval``: two branches, ``eval, report`` and ``sft, serve-intl``."""
    doc: dict[str, Any] = copy.deepcopy(_diamond().model_dump(mode="json"))
    doc["workloads"][0]["stages"].append(
        {
            "id": "report",
            "kind": "finetune",
            "after": ["eval"],
            "tokens": 1.0e9,
            "locations": ["SG", "MY"],
        }
    )
    return Scenario.model_validate(doc)


@pytest.fixture(scope="module")
def branches(rules: RuleSet) -> ExportInput:
    sc = _branches()
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    inp = export_input(sc, plan, rules, plan_id="branches", run="true")
    assert inp.job(W, "report").after == ("eval",)
    assert inp.job(W, "serve-intl").after == ("sft",)
    return inp


def _kubectl_holding(tmp_path: Path, held: dict[str, int], failing: tuple[str, ...] = ()) -> str:
    """A ``kubectl`` stand-in before the harness's: a JobSet in ``held`` stays running until
    the clock reaches its value (-1: it has failed); an apply of a file in ``failing`` fails."""
    bin_dir = tmp_path / "pre"
    bin_dir.mkdir(parents=True, exist_ok=True)
    cases = "".join(
        f"  {n}) echo Failed; exit 0 ;;\n"
        if t < 0
        else f'  {n}) [ "$(cat "$CLOCK")" -ge {t} ] || {{ echo ""; exit 0; }} ;;\n'
        for n, t in held.items()
    )
    fails = "".join(f'  */{n}.yaml) echo "apply $5" >> "$LOG"; exit 1 ;;\n' for n in failing)
    (bin_dir / "kubectl").write_text(
        "#!/bin/bash\n"
        # a held JobSet still exists (apply.sh asks before it takes one for deleted)
        '[ "${8:-}" = --ignore-not-found ] && { echo "jobset.jobset.x-k8s.io/$7"; exit 0; }\n'
        'if [ "$3" = apply ]; then case "$5" in\n' + (fails or "  -) ;;\n") + "esac; fi\n"
        'if [ "$3" != apply ]; then case "$7" in\n' + (cases or "  -) ;;\n") + "esac; fi\n"
        'PATH=${PATH#*:} exec kubectl "$@"\n'
    )
    (bin_dir / "kubectl").chmod(0o755)
    return str(bin_dir)


def _apply(
    inp: ExportInput, tmp_path: Path, clock: int | None, jumps: dict[str, int], pre: str
) -> tuple[int, str, list[str]]:
    """Run apply.sh; ``jumps``: the clock once the stage of that name is applied."""
    files = exporter("kubernetes").render(inp).files
    _sane(files["kubernetes/apply.sh"])
    paths = {
        p.rsplit("/", 1)[1].removesuffix(".yaml"): p.removeprefix("kubernetes/") for p in files
    }
    jumps = {paths[n]: t for n, t in jumps.items()}
    env = {"STRAITS_POLL_SECONDS": "1", "PATH": f"{pre}:{tmp_path / 'bin'}:{os.environ['PATH']}"}
    p, log = _run(files, tmp_path, "kubernetes/apply.sh", clock=clock, jumps=jumps, **env)
    return p.returncode, p.stdout + p.stderr, log


def test_a_branch_does_not_wait_for_another_branchs_stage(
    branches: ExportInput, tmp_path: Path
) -> None:
    pre, ev, sft, serve, report = (
        branches.job(W, s) for s in ("pretrain", "eval", "sft", "serve-intl", "report")
    )
    # eval runs two minutes past the service's planned start
    pre_dir = _kubectl_holding(tmp_path, {ev.name: serve.begin + 120})
    rc, out, log = _apply(
        branches,
        tmp_path,
        pre.begin,
        {pre.name: ev.begin, sft.name: serve.begin - 90},
        pre_dir,
    )
    assert rc == 0, out
    started = _started(log)
    assert sorted(started) == sorted(j.name for j in (pre, ev, sft, serve, report))
    # the service waited for sft and its own start only, not for eval (and report after it)
    assert started.index(serve.name) < started.index(report.name), log


def test_a_failed_branch_stops_only_the_stages_after_it(
    branches: ExportInput, tmp_path: Path
) -> None:
    """``eval`` cannot be applied: ``report`` after it is not, the other branch runs on."""
    pre, ev, sft, serve, report = (
        branches.job(W, s) for s in ("pretrain", "eval", "sft", "serve-intl", "report")
    )
    pre_dir = _kubectl_holding(tmp_path, {}, failing=(ev.name,))
    rc, out, log = _apply(
        branches, tmp_path, pre.begin, {pre.name: ev.begin, sft.name: serve.begin - 5}, pre_dir
    )
    assert rc == 1, out
    assert report.name not in _started(log)
    assert serve.name in _started(log)


def test_a_stage_after_a_stopped_branch_is_not_applied_and_nothing_hangs(
    branches: ExportInput, tmp_path: Path
) -> None:
    """The pre-train cannot be applied: ``sft``, another branch after it, stops at its marker
    (it polled for a JobSet never applied before), and so does every stage after it."""
    pre = branches.job(W, "pretrain")
    pre_dir = _kubectl_holding(tmp_path, {}, failing=(pre.name,))
    rc, out, log = _apply(branches, tmp_path, pre.begin, {}, pre_dir)
    assert rc == 1, out
    assert _started(log) == [pre.name]  # the failed apply, and nothing after it
    assert not any(ln.startswith("get ") for ln in log)


def test_karmada_names_when_to_apply_a_stage_after_another(branches: ExportInput) -> None:
    """Karmada has no order: a stage's policy applied with the rest ran it at once, before its
    predecessors, and the export said nothing; each stage after another gets a note naming its
    predecessors and planned start."""
    res = exporter("karmada").render(branches)
    for job in branches.jobs:
        mine = [n for n in res.notes if n.startswith(f"{W}/{job.stage}: after ")]
        if not job.after:
            assert mine == []
            continue
        assert len(mine) == 1, res.notes
        assert f"karmada/{job.name}.yaml" in mine[0] and job.begin_utc in mine[0]


def _fan(n: int) -> Scenario:
    """The offshore example with ``n`` evaluations after the pre-train: ``n`` + 1 branches."""
    doc: dict[str, Any] = copy.deepcopy(_diamond().model_dump(mode="json"))
    doc["workloads"][0]["stages"] += [
        {
            "id": f"eval-{i}",
            "kind": "finetune",
            "after": ["pretrain"],
            "tokens": 1.0e8,
            "locations": ["SG", "MY"],
        }
        for i in range(n)
    ]
    return Scenario.model_validate(doc)


def test_a_fan_of_branches_whose_starts_have_passed_all_run_at_once(
    rules: RuleSet, tmp_path: Path
) -> None:
    """40 branches after the pre-train, planned in 2025, run with today's clock: each stage
    applied once, the pre-train first, nothing waited for a planned start."""
    sc = _fan(40)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    inp = export_input(sc, plan, rules, plan_id="fan", run="true")
    files = exporter("kubernetes").render(inp).files
    script = files["kubernetes/apply.sh"]
    _sane(script)
    assert script.count(") < /dev/null &") >= 41  # a background job per branch
    p, log = _run(files, tmp_path, "kubernetes/apply.sh", clock=None)
    assert p.returncode == 0, p.stdout + p.stderr
    started = _started(log)
    assert sorted(started) == sorted(j.name for j in inp.jobs)
    assert started[0] == inp.job(W, "pretrain").name
    assert not any(ln.startswith("sleep ") and ln != "sleep 0" for ln in log)


def test_a_stage_after_two_branches_waits_for_both(rules: RuleSet, tmp_path: Path) -> None:
    """``merge`` after ``eval`` and ``sft``: it continues ``sft``'s branch (``report`` took
    ``eval``'s) and waits for ``eval`` across branches too; ``sft`` failed, so neither ``merge``
    nor the service after ``sft`` is applied, and ``report`` (``eval``'s branch) is."""
    doc: dict[str, Any] = copy.deepcopy(_branches().model_dump(mode="json"))
    doc["workloads"][0]["stages"].append(
        {
            "id": "merge",
            "kind": "finetune",
            "after": ["eval", "sft"],
            "tokens": 1.0e9,
            "locations": ["SG", "MY"],
        }
    )
    sc = Scenario.model_validate(doc)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    inp = export_input(sc, plan, rules, plan_id="merge", run="true")
    sft = inp.job(W, "sft")
    pre_dir = _kubectl_holding(tmp_path, {sft.name: -1})
    rc, out, log = _apply(inp, tmp_path, None, {}, pre_dir)  # starts passed
    assert rc == 1, out
    started = _started(log)
    assert sft.name in started and inp.job(W, "report").name in started
    assert inp.job(W, "merge").name not in started
    assert inp.job(W, "serve-intl").name not in started
