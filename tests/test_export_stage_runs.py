"""What each exported stage runs: ``--run`` values per stage and their errors, the scenario's
stage command and a keyed run that wins, hostile export fields refused as scenario errors, a
command reaching every target (SkyPilot, Kubernetes, Karmada, Slurm) verbatim. Moved from
tests/test_export.py; the fixtures are export_support's.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from export_support import RUN_STEP, _docs, _tasks, demo, inp, offline_job
from straits.errors import InputError
from straits.export import export_input, render, write_bundle
from straits.export.base import ExportInput
from straits.export.commands import parse as parse_run
from straits.model.scenario import Scenario
from straits.rules import RuleSet

__all__ = ["demo", "inp"]  # fixtures


# --- what each stage runs -----------------------------------------------------------------------
def _stage_commands(inp: ExportInput) -> dict[str, str]:
    return {j.stage: j.command for j in inp.jobs}


RUN_CASES = [  # (--run values, expected command per stage; None: the failing default)
    ([], {"pretrain": None, "sft": None, "serve-intl": None}),
    (["all"], {"pretrain": "all", "sft": "all", "serve-intl": "all"}),
    (["all", "serve=vllm"], {"pretrain": "all", "sft": "all", "serve-intl": "vllm"}),
    (["finetune=ft", "pretrain=pt"], {"pretrain": "pt", "sft": "ft", "serve-intl": None}),
    (["finetune=ft", "sft=by-id"], {"pretrain": None, "sft": "by-id", "serve-intl": None}),
    (
        ["sft=by-id", "chat-72b/sft=by-pair"],
        {"pretrain": None, "sft": "by-pair", "serve-intl": None},
    ),
    (  # a key with blanks before it is the key (a review: it ran `pretrain=./run.sh`)
        [" pretrain=pt", "\tfinetune=ft"],
        {"pretrain": "pt", "sft": "ft", "serve-intl": None},
    ),
    *(  # key=value folders in a program's path, and shell assignments, are commands
        ([cmd], dict.fromkeys(("pretrain", "sft", "serve-intl"), cmd))
        for cmd in (
            "./sweeps/lr=0.1/train.sh",
            "/exp/date=2024-01-01/run.sh",
            "outputs/lr=0.1,bs=32/train.sh",
            "LD_LIBRARY_PATH+=:/opt/lib torchrun x.py",
            "arr[0]=x; torchrun x.py",
            "'FOO=1' cmd",
        )
    ),
    (  # a '=' past the first word, or after a shell name, is the command's own
        ["torchrun --nnodes=2 x.py"],
        dict.fromkeys(("pretrain", "sft", "serve-intl"), "torchrun --nnodes=2 x.py"),
    ),
    (
        ["NCCL_DEBUG=INFO torchrun x.py"],
        {
            "pretrain": "NCCL_DEBUG=INFO torchrun x.py",
            "sft": "NCCL_DEBUG=INFO torchrun x.py",
            "serve-intl": "NCCL_DEBUG=INFO torchrun x.py",
        },
    ),
]


@pytest.mark.parametrize(("values", "want"), RUN_CASES)
def test_run_options_give_each_stage_its_command(
    demo: tuple[Scenario, dict[str, Any]],
    rules: RuleSet,
    values: list[str],
    want: dict[str, str | None],
) -> None:
    sc, plan = demo
    inp = export_input(sc, plan, rules, plan_id="p", commands=parse_run(values, sc))
    for stage, cmd in _stage_commands(inp).items():
        if want[stage] is None:
            assert "no command was given" in cmd and stage in cmd and "exit 1" in cmd
        else:
            assert cmd == want[stage]


@pytest.mark.parametrize(
    "values",
    [
        ["pretrian=x"],
        ["fine-tune=x"],
        ["a", "b"],
        ["sft=x", "sft=y"],
        ["sft="],
        ["chat-72b/nope=x"],
        ["x" * 20000],
        ["a\0b"],
        # meant as keys, named nothing, and became every stage's command (a fresh-eye attack)
        ["chat-72b/=x"],
        ["/pretrain=x"],
        ["chat-72b/pretrain/x=y"],
        ["-pretrain=x"],
        ["=cmd"],
        ["chat-72b/sft =torchrun x.py"],
        ["sft = torchrun x.py"],
        ["pretrian = torchrun x.py"],
        # assignments only: bash -c runs nothing and succeeds (a review)
        ["NCCL_DEBUG=INFO"],
        ["A=1 B=2"],
    ],
)
def test_bad_run_options_are_input_errors(
    demo: tuple[Scenario, dict[str, Any]], values: list[str]
) -> None:
    with pytest.raises(InputError) as err:
        parse_run(values, demo[0])
    assert err.value.path and err.value.path.startswith("--run")


def test_the_scenarios_stage_command_is_used_and_a_keyed_run_wins(
    demo: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
    sc, plan = demo
    doc = sc.model_dump(mode="json")
    doc["workloads"][0]["stages"][1]["command"] = "python sft.py --resume"
    sc2 = Scenario.model_validate(doc)
    got = _stage_commands(
        export_input(sc2, plan, rules, plan_id="p", commands=parse_run(["plain"], sc2))
    )
    assert got == {"pretrain": "plain", "sft": "python sft.py --resume", "serve-intl": "plain"}
    got = _stage_commands(
        export_input(sc2, plan, rules, plan_id="p", commands=parse_run(["finetune=ft"], sc2))
    )
    assert got["sft"] == "ft"


HOSTILE_FIELDS = [  # (where, value, the field path the error names)
    (("sites", 0, "targets", "slurm", "max_time"), "0", "targets.slurm.max_time"),
    (("sites", 0, "targets", "slurm", "max_time"), "1-2-3", "targets.slurm.max_time"),
    (("sites", 0, "targets", "slurm", "max_jobs"), 0, "targets.slurm.max_jobs"),
    (("sites", 0, "targets", "slurm", "max_jobs"), True, "targets.slurm.max_jobs"),
    (("sites", 0, "targets", "slurm", "max_jobs"), 10**30, "targets.slurm.max_jobs"),
    (
        ("sites", 0, "targets", "slurm", "checkpoint_root"),
        "$(rm -rf /)",
        "targets.slurm.checkpoint_root",
    ),
    (("sites", 0, "targets", "slurm", "checkpoint_root"), '/a"b', "targets.slurm.checkpoint_root"),
    (("workloads", 0, "stages", 0, "command"), "x" * 20000, "stages[0].command"),
    (("workloads", 0, "stages", 0, "command"), "", "stages[0].command"),
    (("workloads", 0, "stages", 0, "command"), "a\0b", "stages[0].command"),
    (
        ("sites", 0, "pools", 0, "targets"),
        {"kubernetes_topology": {"level": "bad level"}},
        "kubernetes_topology.level",
    ),
    (
        ("sites", 0, "pools", 0, "targets"),
        {"kubernetes_topology": {"level": "a/b", "mode": "sometimes"}},
        "kubernetes_topology.mode",
    ),
]


@pytest.mark.parametrize(("where", "value", "path"), HOSTILE_FIELDS)
def test_hostile_export_fields_are_scenario_errors(
    where: tuple[Any, ...], value: Any, path: str
) -> None:
    from straits.loading import parse_scenario

    doc = yaml.safe_load((Path(__file__).parent / "data" / "slurm-ci.yaml").read_text())
    node = doc
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    with pytest.raises(InputError) as err:
        parse_scenario(doc)
    assert path in str(err.value)


def test_a_command_reaches_every_target_verbatim(
    demo: tuple[Scenario, dict[str, Any]], rules: RuleSet, tmp_path: Path
) -> None:
    """Quotes, dollars, newlines and backslashes survive YAML and shell quoting."""
    sc, plan = demo
    tricky = "echo \"it's $HOME\" \\\n  && printf '%s\\n' `date` ; echo 'a\"b'"
    inp = export_input(sc, plan, rules, plan_id="p", run=tricky)
    files = {
        p: t for r in render(inp, ("skypilot", "kubernetes", "slurm")) for p, t in r.files.items()
    }
    for task in _tasks(files).values():
        assert task["run"].endswith("\n" + tricky)
    for d in _docs(files):
        for c in _containers(d):
            assert {"name": "STRAITS_COMMAND", "value": tricky} in c["env"]
    write_bundle(tmp_path, files)
    # run each sbatch script with stand-ins for scontrol and srun (srun records the command)
    out = tmp_path / "cmd.txt"
    srun = "#!/bin/bash\n" + RUN_STEP + 'printf %s "$STRAITS_COMMAND" > "$OUT"\n'
    srun += 'STRAITS_COMMAND=true step "$@"\n'
    env = offline_job(tmp_path, srun, out, job_id="7")
    for path in files:
        if path.endswith(".sbatch"):
            p = subprocess.run(
                ["bash", str(tmp_path / path)], env=env, capture_output=True, text=True, timeout=30
            )
            assert p.returncode == 0, p.stdout + p.stderr
            assert out.read_text() == tricky


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            if "containers" in x:
                found.extend(x["containers"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(doc)
    return found
