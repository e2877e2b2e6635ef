"""Hostile but valid scenarios against the names and values the schedulers accept.

Ids may be up to 128 characters of ``[A-Za-z0-9][A-Za-z0-9._-]*``: long ones, ones that differ
only in case or only after the 63rd character, ones with dots, underscores, runs of dashes or
a leading digit. Every exported object must keep the rules the schedulers check (see
:mod:`straits.export.names` for where each comes from) and no two objects may share a name.
That a command reaches the shell as written is test_export_commands.py's.
"""

from __future__ import annotations

import copy
import re
import subprocess
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from export_support import _containers
from straits.export import export_input, exporter
from straits.export.base import ExportInput
from straits.export.names import NAME_MAX, distinct, label_value, tag, unique_names
from straits.loading import parse_scenario
from straits.plan import make_plan
from straits.rules import RuleSet

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "offshore-2025.yaml"

#: RFC 1035 label: Service names, so JobSets' and LeaderWorkerSets' (their headless Services)
DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
#: Kubernetes label values (apimachinery IsValidLabelValue)
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
#: SkyPilot task names (sky/task.py _VALID_NAME_REGEX: no '---')
SKY_TASK = re.compile(r"[a-zA-Z0-9]+(?:[._-]{1,2}[a-zA-Z0-9]+)*")
#: `sky jobs launch --name` and `sky serve up --service-name` (CLUSTER_NAME_VALID_REGEX)
SKY_CLUSTER = re.compile(r"[a-zA-Z]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?")
STAGES = ("pretrain", "sft", "serve-intl")
SITES = ("sg-jurong", "my-johor", "cn-ulanqab", "hz-idc")

L = "W" + "x" * 127
#: (workload ids, stage ids for pretrain/sft/serve-intl, site renames): each a valid scenario
CASES: dict[str, tuple[tuple[str, ...], tuple[str, str, str], dict[str, str]]] = {
    "128-character ids": (
        (L,),
        ("P" * 128, "S" * 128, "V" * 128),
        {"sg-jurong": "J" * 128, "my-johor": "K" * 128},
    ),
    "differ only in case": (("Chat", "chat"), STAGES, {}),
    "differ after the 63rd character": (("a" * 70 + "1", "a" * 70 + "2"), STAGES, {}),
    "stages differ after the 63rd character": (
        ("w",),
        ("s" * 64 + "_a", "s" * 64 + "_b", "s" * 64 + ".c"),
        {},
    ),
    "dots and underscores": (("chat.72b_v1",), ("pre.train_1", "s.f.t", "serve_intl."), {}),
    "leading digits": (("72b",), ("0pre", "1sft", "2serve"), {"sg-jurong": "1sg"}),
    "runs of dashes": (("w--",), ("a---b", "c.-_d", "e__-_f"), {}),
    "plain join collides": (("a-b", "a"), ("c", "b-c", "serve"), {}),
}


def _scenario(
    workloads: tuple[str, ...], stages: tuple[str, str, str], sites: dict[str, str]
) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    for s in doc["sites"]:
        s["id"] = sites.get(s["id"], s["id"])
    for d in doc["datasets"]:
        d["located_at"] = sites.get(d["located_at"], d["located_at"])
    rename = dict(zip(STAGES, stages, strict=True))
    base = doc["workloads"][0]
    for st_ in base["stages"]:
        st_["id"] = rename[st_["id"]]
        st_["after"] = [rename[a] for a in st_.get("after", [])]
    doc["workloads"] = []
    for wid in workloads:
        w = copy.deepcopy(base)
        w["id"] = wid
        doc["workloads"].append(w)
    return doc


@cache
def _export(case: str, rules: RuleSet) -> tuple[ExportInput, dict[str, dict[str, str]]]:
    sc = parse_scenario(_scenario(*CASES[case]))
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    inp = export_input(sc, plan, rules, plan_id="hostile:names", run="true")
    assert len(inp.jobs) >= len(CASES[case][0]) * 2, inp.unplaced
    return inp, {
        t: exporter(t).render(inp).files for t in ("kubernetes", "karmada", "slurm", "skypilot")
    }


def _docs(files: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (p, d) for p, t in files.items() if p.endswith(".yaml") for d in yaml.safe_load_all(t) if d
    ]


@pytest.mark.parametrize("case", list(CASES))
def test_stage_names_are_distinct_rfc1035_labels(case: str, rules: RuleSet) -> None:
    inp, _ = _export(case, rules)
    names = [j.name for j in inp.jobs]
    assert len(set(names)) == len(names), names
    for n in names:
        assert DNS1035.fullmatch(n) and len(n) <= NAME_MAX and "--" not in n, n


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("target", ["kubernetes", "karmada"])
def test_kubernetes_objects_fit_what_the_controllers_derive(
    case: str, target: str, rules: RuleSet
) -> None:
    inp, out = _export(case, rules)
    seen: Counter[tuple[str, str, str, str]] = Counter()
    selectors: list[tuple[tuple[str, str], ...]] = []
    for path, doc in _docs(out[target]):
        meta, kind = doc["metadata"], doc["kind"]
        name = meta["name"]
        seen[
            (path.split("/")[1] if target == "kubernetes" else "", meta["namespace"], kind, name)
        ] += 1
        assert DNS1035.fullmatch(name) and len(name) <= 63, (kind, name)
        for value in [*meta.get("labels", {}).values()]:
            assert LABEL_VALUE.fullmatch(value) and len(value) <= 63, value
        spec = doc["spec"]
        if kind == "JobSet":  # jobset_webhook.go: the longest pod name, with the Job's 5 chars
            for rj in spec["replicatedJobs"]:
                last = rj["template"]["spec"]["completions"] - 1
                pod = f"{name}-{rj['name']}-{rj['replicas'] - 1}-{last}-abcde"
                assert DNS1035.fullmatch(pod) and len(pod) <= 63, pod
        if kind == "LeaderWorkerSet":  # a group's StatefulSet + its revision-hash label
            assert len(f"{name}-{spec['replicas'] - 1}") + 11 <= 63
        if kind == "Deployment":
            selectors.append(tuple(sorted(spec["selector"]["matchLabels"].items())))
    assert [k for k, n in seen.items() if n > 1] == []
    # two serving stages never select each other's pods
    assert len(set(selectors)) == len(selectors)
    jobs = sum(1 for j in inp.jobs)
    assert len([p for p in out[target] if p.endswith(".yaml") and "/kueue." not in p]) == jobs


@pytest.mark.parametrize("case", list(CASES))
def test_skypilot_names_pass_skypilots_checks(case: str, rules: RuleSet) -> None:
    _, out = _export(case, rules)
    files = out["skypilot"]
    for _, doc in _docs(files):
        assert SKY_TASK.fullmatch(doc["name"]), doc["name"]
    launch = files["skypilot/launch.sh"]
    names = re.findall(r"--(?:name|service-name) (\S+) ", launch)
    assert names and all(SKY_CLUSTER.fullmatch(n) for n in names), names
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("case", list(CASES))
def test_slurm_scripts_have_one_file_and_job_name_each(case: str, rules: RuleSet) -> None:
    inp, out = _export(case, rules)
    scripts = {p: t for p, t in out["slurm"].items() if p.endswith(".sbatch")}
    assert len(scripts) == len(inp.jobs)
    names = [re.search(r"^#SBATCH --job-name=(\S+)$", t, re.M).group(1) for t in scripts.values()]  # type: ignore[union-attr]
    assert len(set(names)) == len(names)
    for text in [*scripts.values(), *(t for p, t in out["slurm"].items() if p.endswith(".sh"))]:
        subprocess.run(["bash", "-n"], input=text, text=True, check=True)


# --- names and label values as functions ---------------------------------------------------------
ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", fullmatch=True)


@given(st.lists(st.tuples(ids, ids), min_size=1, max_size=12, unique=True))
def test_any_ids_give_distinct_rfc1035_names(keys: list[tuple[str, str]]) -> None:
    names = unique_names(keys)
    assert len(set(names.values())) == len(keys)
    for n in names.values():
        assert DNS1035.fullmatch(n) and len(n) <= NAME_MAX and "--" not in n


@given(st.lists(ids, min_size=1, max_size=12, unique=True))
def test_distinct_ids_give_distinct_label_values(texts: list[str]) -> None:
    values = [label_value(t) for t in texts]
    assert len(set(values)) == len(values)
    for v in values:
        assert LABEL_VALUE.fullmatch(v) and len(v) <= 63


@pytest.mark.parametrize(
    ("texts", "values"),
    [
        (["serve_intl.", "serve_intl"], None),  # one stripped would be the other
        (["a" * 63 + "1", "a" * 63 + "2"], None),  # equal in their first 63
        (["hostile:plan"], None),  # ':' is no label character
    ],
)
def test_label_values_that_had_to_change_end_in_a_hash(texts: list[str], values: None) -> None:
    out = [label_value(t) for t in texts]
    assert len(set(out)) == len(out)
    for t, v in zip(texts, out, strict=True):
        assert v == t or v.endswith(tag(t))


def test_a_plain_name_equal_to_a_hashed_one_widens_the_hash() -> None:
    hashed = f"q-{tag('Q_')}"  # what "Q_" becomes; another id may be exactly that
    out = distinct({"a": "Q_", "b": hashed}, 40)
    assert len(set(out.values())) == 2
    assert all(DNS1035.fullmatch(n) for n in out.values())


def command_input(rules: RuleSet) -> ExportInput:
    """The chat scenario's plan as export input (test_export_commands.py's too)."""
    sc = parse_scenario(_scenario(("chat",), STAGES, {}))
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    return export_input(sc, plan, rules, plan_id="p", run="true")


@pytest.fixture(scope="module")
def command_inp(rules: RuleSet) -> ExportInput:
    return command_input(rules)


# --- --image ----------------------------------------------------------------------------------
GOOD_IMAGES = [
    "nvcr.io/nvidia/pytorch:25.01-py3",
    "localhost:5000/team/trainer:v1",
    "ubuntu",
    "ubuntu@sha256:" + "a" * 64,
    "registry.example.com:443/a.b/c__d/e---f:T_1",
    "[::1]:5000/x",
    "docker.io/library/python:3.11-slim@sha256:" + "0" * 64,
]
BAD_IMAGES = [
    "a::b",  # two tags
    "x@y",  # no digest
    "a/-b",  # a path component starting with '-'
    "a:",  # an empty tag
    "a//b",
    "nvcr.io/NVIDIA/pytorch",  # an uppercase repository path
    "a/b:" + "t" * 129,  # a tag over 128 characters
    "ubuntu@sha256:abc",  # a digest under 32 hex digits
    "a/b/",
]


@pytest.mark.parametrize("image", GOOD_IMAGES)
def test_image_references_the_kubelet_parses_are_taken(
    image: str, command_inp: ExportInput, rules: RuleSet
) -> None:
    from straits.api import check_image

    check_image(image)
    inp = export_input(
        command_inp.scenario, command_inp.plan, rules, plan_id="p", run="true", image=image
    )
    docs = [d for _, d in _docs(exporter("kubernetes").render(inp).files)]
    assert {c["image"] for d in docs for c in _containers(d)} == {image}


@pytest.mark.parametrize("image", BAD_IMAGES)
def test_image_references_the_kubelet_cannot_parse_are_refused(
    image: str, command_inp: ExportInput, rules: RuleSet
) -> None:
    """The API server takes any image without spaces; the kubelet then leaves the pods in
    InvalidImageName. Refused before anything is written (exit 2 in the CLI)."""
    from straits.api import check_image
    from straits.errors import InputError

    with pytest.raises(InputError):
        check_image(image)
    with pytest.raises(InputError):
        export_input(
            command_inp.scenario, command_inp.plan, rules, plan_id="p", run="true", image=image
        )


def test_local_queue_files_never_share_a_path(rules: RuleSet) -> None:
    """Sites of one cluster whose namespace and queue join alike (a-b + c, a + b-c), and a
    stage named like a queue file (kueue-a + b-c): each LocalQueue and each stage keeps its
    own file (``kueue-<ns>-<queue>.yaml`` was one file for both, the last written winning)."""
    doc = _scenario(("kueue-a",), ("b-c", "sft", "serve-intl"), {})
    spaces = [("a-b", "c"), ("a", "b-c"), ("a-b-c", "q"), ("x", "y")]
    for site, (ns, queue) in zip(doc["sites"], spaces, strict=True):
        site["targets"]["kubernetes"] = {
            "cluster": "one",
            "namespace": ns,
            "queue": queue,
            "cluster_queue": "cq",
        }
    sc = parse_scenario(doc)
    inp = export_input(
        sc, make_plan(sc, rules=rules, solver="greedy").to_json(), rules, plan_id="p"
    )
    files = exporter("kubernetes").render(inp).files
    docs = [d for _, d in _docs(files)]
    placed = {
        (s.namespace, s.queue)
        for j in inp.jobs
        if (s := j.planned.site.targets.kubernetes) is not None  # type: ignore[union-attr]
    }
    queues = {
        (d["metadata"]["namespace"], d["metadata"]["name"])
        for d in docs
        if d["kind"] == "LocalQueue"
    }
    assert queues == placed
    stages = [d for d in docs if d["kind"] in ("JobSet", "Deployment", "LeaderWorkerSet")]
    assert len(stages) == len(inp.jobs)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kubernetes_node_labels", {"g" * 64: "x"}),  # a label name over 63
        ("kubernetes_node_labels", {"a..b/gpu": "x"}),  # an empty DNS label in the prefix
        ("kubernetes_node_labels", {"a.-b/gpu": "x"}),
        ("kubernetes_node_labels", {"p" * 254 + "/gpu": "x"}),  # a prefix over 253
        ("kubernetes_resource", "nvidia gpu"),  # no resource name
        ("kubernetes_resource", "nvidia.com/"),
    ],
)
def test_label_keys_and_resources_the_api_server_refuses_are_refused(
    field: str, value: Any
) -> None:
    """A pool's node labels become required node affinity and its resource the pods' requests:
    the API server refuses a key or resource that is no qualified name, so the scenario is."""
    from straits.errors import ScenarioError

    doc = _scenario(("w",), STAGES, {})
    doc["sites"][0]["pools"][0].setdefault("targets", {})[field] = value
    with pytest.raises(ScenarioError, match="qualified name"):
        parse_scenario(doc)


def test_a_qualified_label_key_of_the_longest_parts_is_taken() -> None:
    """253 + '/' + 63 = 317 characters (the key's length was capped at 316)."""
    doc = _scenario(("w",), STAGES, {})
    key = ".".join(["p" * 63] * 4)[:253].rstrip(".") + "/" + "n" * 63
    doc["sites"][0]["pools"][0]["targets"]["kubernetes_node_labels"] = {key: "v"}
    parse_scenario(doc)


def test_annotations_of_a_stage_after_thousands_stay_within_256_kib(
    command_inp: ExportInput,
) -> None:
    """The API server refuses an object whose annotations exceed 256 KiB in all; a stage after
    2,500 stages of 128-character ids listed them all in ``straits.dev/after`` (322 KB)."""
    import dataclasses

    after = tuple(f"{i:05d}" + "s" * 123 for i in range(2500))
    job = next(j for j in command_inp.jobs if not j.serving)
    inp = dataclasses.replace(
        command_inp,
        jobs=tuple(
            dataclasses.replace(j, after=after) if j is job else j for j in command_inp.jobs
        ),
    )
    for target in ("kubernetes", "karmada"):
        for _, doc in _docs(exporter(target).render(inp).files):
            ann = doc["metadata"].get("annotations", {})
            assert sum(len(k.encode()) + len(v.encode()) for k, v in ann.items()) <= 256 * 1024
            if "straits.dev/after" in ann and doc["metadata"]["name"] == job.name:
                assert ann["straits.dev/after"].startswith(after[0] + ",")
                assert ann["straits.dev/after"].endswith(" more)")


def test_the_skypilot_rules_here_are_skypilots() -> None:
    """The name rules above, as the installed SkyPilot has them (skipped without it)."""
    task = pytest.importorskip("sky.task")
    constants = pytest.importorskip("sky.skylet.constants")
    assert SKY_TASK.pattern == task._VALID_NAME_REGEX
    assert SKY_CLUSTER.pattern == constants.CLUSTER_NAME_VALID_REGEX


@pytest.mark.parametrize(("years", "cap"), [(1, None), (60, 2**31 - 1), (75, 2**31 - 1)])
def test_max_exec_time_stays_one_kueue_reads(
    years: int, cap: int | None, command_inp: ExportInput
) -> None:
    """Kueue parses ``max-exec-time-seconds`` as an int32 and ignores a larger value: a
    training stage planned for decades (dates run to 2100) lost its cap."""
    import dataclasses
    import datetime as dt

    from straits.export.k8s_objects import MAX_EXEC_LABEL, kueue_labels

    job = next(j for j in command_inp.jobs if not j.serving)
    p = job.placement
    long = dataclasses.replace(
        job, placement=dataclasses.replace(p, end=p.start + dt.timedelta(days=365 * years))
    )
    k = job.planned.site.targets.kubernetes  # type: ignore[union-attr]
    value = int(kueue_labels(long, k)[MAX_EXEC_LABEL])  # type: ignore[arg-type]
    assert 0 < value <= 2**31 - 1
    if cap is not None:
        assert value == cap
