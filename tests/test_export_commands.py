"""A stage's command must reach the shell as it was written, whatever it holds, through every
export target: the kubelet's ``$(VAR)`` and ``$$`` expansion in a pod's env (Kubernetes,
Karmada), a Slurm script's ``export`` line (read by bash, and by sbatch, which refuses DOS line
breaks), and SkyPilot's ``run``. Split from test_export_names.py, whose scenarios it uses."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from export_support import _containers
from straits.errors import InputError
from straits.export import exporter
from straits.export.base import ExportInput
from straits.export.commands import parse as parse_run
from straits.model.scenario import Scenario
from straits.rules import RuleSet
from test_cli import one_line_error, straits
from test_export_names import _docs, command_input

COMMANDS = [
    "echo $$ > /tmp/pid",  # the kubelet made `$$` one `$`
    "echo $(STRAITS_STAGE) $(hostname)",  # and expanded `$(VAR)` of the env before it
    "x=$$(STRAITS_PLAN_ID); echo \"$x\" '$' a$",
    "torchrun --nnodes=$NNODES train.py\r\necho done\r\n",  # sbatch refuses \r\n
    "printf '%s\\n' \"it's\" `date` %j %x 100% \\\\ ${HOME} é\x1b[0m\ttab",
    "python -c 'import sys; print(sys.argv)' -- \"a b\" ; exit 0",
]


def _kubelet_expand(value: str, env: dict[str, str]) -> str:
    """k8s.io/kubernetes third_party/forked/golang/expansion: ``$$`` is ``$``, ``$(NAME)`` the
    value of NAME when defined (else left as written), any other ``$`` itself."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "$" and i + 1 < len(value):
            nxt = value[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = value.find(")", i + 2)
                if end != -1:
                    name = value[i + 2 : end]
                    out.append(env.get(name, f"$({name})"))
                    i = end + 1
                    continue
                out.append("$(")
                i += 2
                continue
            out.append("$" + nxt)
            i += 2
            continue
        out.append(value[i])
        i += 1
    return "".join(out)


@pytest.fixture(scope="module")
def command_inp(rules: RuleSet) -> ExportInput:
    return command_input(rules)


def _with_command(inp: ExportInput, command: str) -> ExportInput:
    import dataclasses

    return dataclasses.replace(
        inp, jobs=tuple(dataclasses.replace(j, command=command) for j in inp.jobs)
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_kubernetes_pods_get_the_command_as_written(command: str, command_inp: ExportInput) -> None:
    inp = _with_command(command_inp, command)
    docs = [d for _, d in _docs(exporter("kubernetes").render(inp).files)]
    found = 0
    for doc in docs:
        for c in _containers(doc):
            env: dict[str, str] = {}
            for e in c["env"]:
                if "value" in e:
                    env[e["name"]] = _kubelet_expand(e["value"], env)
            assert env["STRAITS_COMMAND"] == command
            found += 1
    assert found


@pytest.mark.parametrize("command", COMMANDS)
def test_slurm_scripts_give_the_command_as_written(command: str, command_inp: ExportInput) -> None:
    inp = _with_command(command_inp, command)
    scripts = [t for p, t in exporter("slurm").render(inp).files.items() if p.endswith(".sbatch")]
    assert scripts
    for text in scripts:
        assert "\r\n" not in text  # sbatch: "Batch script contains DOS line breaks"
        subprocess.run(["bash", "-n"], input=text, text=True, check=True)
        line = next(ln for ln in text.splitlines() if ln.startswith("export STRAITS_COMMAND="))
        p = subprocess.run(
            ["bash", "-c", f'{line}\nprintf %s "$STRAITS_COMMAND"'], capture_output=True, check=True
        )
        assert p.stdout.decode() == command


@pytest.mark.parametrize("command", COMMANDS)
def test_skypilot_runs_the_command_as_written(command: str, command_inp: ExportInput) -> None:
    inp = _with_command(command_inp, command)
    docs = [d for _, d in _docs(exporter("skypilot").render(inp).files) if "run" in d]
    assert docs
    for d in docs:
        assert d["run"].endswith("\n" + command)


def test_sbatch_reads_a_script_whose_command_holds_crlf(
    command_inp: ExportInput, tmp_path: Path
) -> None:
    """sbatch's own check, where sbatch is installed: it refuses a script holding \\r\\n before
    it asks any controller (a minimal slurm.conf; no controller answers, so it then waits)."""
    import shutil

    if shutil.which("sbatch") is None:
        pytest.skip("no sbatch")
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=t\nSlurmctldHost=localhost\n")
    inp = _with_command(command_inp, COMMANDS[3])
    text = next(t for p, t in exporter("slurm").render(inp).files.items() if p.endswith(".sbatch"))
    (tmp_path / "job.sbatch").write_text(text)
    p = subprocess.run(
        ["timeout", "3", "sbatch", "--test-only", "job.sbatch"],
        cwd=tmp_path,
        env={"SLURM_CONF": str(conf), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert "DOS line breaks" not in p.stderr


# --- a key that is a kind and a stage id (atk72) ------------------------------------------------
def _fine_tune_named(example_path: Path, stage_id: str) -> Scenario:
    """The shipped scenario with its fine-tune's id ``stage_id``."""
    doc = yaml.safe_load(example_path.read_text())
    for w in doc["workloads"]:
        for s in w["stages"]:
            if s["id"] == "sft":
                s["id"] = stage_id
            s["after"] = [stage_id if a == "sft" else a for a in s.get("after") or []]
    return Scenario.model_validate(doc)


def test_a_kind_that_is_also_another_stage_s_id_is_refused(example_path: Path) -> None:
    """``--run serve=CMD`` with a fine-tune whose id is ``serve`` gave the fine-tune the
    serving command without a word; it is refused, naming the key and the forms that say
    which is meant (``workload/stage=``)."""
    sc = _fine_tune_named(example_path, "serve")
    with pytest.raises(InputError) as err:
        parse_run(["serve=vllm serve /models/chat", "torchrun train.py"], sc)
    text = str(err.value)
    assert "'serve' is both a stage kind and the id of stage chat-72b/serve (finetune)" in text
    assert "chat-72b/serve=CMD" in text and "chat-72b/serve-intl=CMD" in text
    assert err.value.path == "--run[0]"
    # the unambiguous forms are taken, each stage getting its own
    cmds = parse_run(["chat-72b/serve=torchrun sft.py", "chat-72b/serve-intl=vllm serve x"], sc)
    w = sc.workload("chat-72b")
    assert cmds.resolve("chat-72b", w.stage("serve"))[0] == "torchrun sft.py"
    assert cmds.resolve("chat-72b", w.stage("serve-intl"))[0] == "vllm serve x"
    # a stage of that very kind named so is no doubt (tests/data/slurm-ci.yaml's `serve`)
    assert parse_run(["finetune=x"], _fine_tune_named(example_path, "finetune")).by_kind


def test_the_cli_refuses_the_ambiguous_key_with_exit_2(example_path: Path, tmp_path: Path) -> None:
    text = example_path.read_text().replace(
        "{id: sft, kind: finetune", "{id: serve, kind: finetune"
    )
    scenario = tmp_path / "s.yaml"
    scenario.write_text(text.replace("after: [sft], chips: 256", "after: [serve], chips: 256"))
    p = straits(
        "export", str(scenario), "--to", "slurm", "-o", str(tmp_path / "out"), "-q",
        "--run", "serve=vllm serve /models/chat", "--run", "torchrun train.py",
    )  # fmt: skip
    one_line_error(p, "'serve' is both a stage kind", "chat-72b/serve=CMD")
    assert not (tmp_path / "out").exists()
