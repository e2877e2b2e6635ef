"""A stage's command must reach the shell as it was written, whatever it holds, through every
export target: the kubelet's ``$(VAR)`` and ``$$`` expansion in a pod's env (Kubernetes,
Karmada), a Slurm script's ``export`` line (read by bash, and by sbatch, which refuses DOS line
breaks), and SkyPilot's ``run``. Split from test_export_names.py, whose scenarios it uses."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from straits.export import exporter
from straits.export.base import ExportInput
from straits.rules import RuleSet
from test_export_names import _containers, _docs, command_input

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
