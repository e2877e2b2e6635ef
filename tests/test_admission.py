"""SkyPilot's RESTful admin policy: lawful launches pass unchanged, unlawful ones are rejected
with the rule's citation. Requests are built and answers decoded with SkyPilot's own classes,
as its client and server do."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from straits.export import export_input, exporter
from straits.loading import load_scenario
from straits.plan import make_plan
from straits.rules import RuleSet
from straits.server import create_app
from straits.server.settings import Settings
from straits.store import Store
from straits.store.records import record_plan
from straits.store.tokens import create_token

sky = pytest.importorskip("sky")
from sky import admin_policy  # noqa: E402
from sky.server.requests import request_names  # noqa: E402
from sky.utils import config_utils  # noqa: E402

URL = "/v1/skypilot/policy"


class Setup:
    def __init__(
        self, client: TestClient, token: str, tasks: dict[str, dict[str, Any]], plan_id: str
    ) -> None:
        self.client, self.token, self.tasks, self.plan_id = client, token, tasks, plan_id

    def user_request(self, task: dict[str, Any]) -> admin_policy.UserRequest:
        return admin_policy.UserRequest(
            task=sky.Task.from_yaml_config(copy.deepcopy(task)),
            skypilot_config=config_utils.Config.from_dict({}),
            request_name=request_names.AdminPolicyRequestName("jobs.launch_cluster"),
        )

    def post(
        self, task: dict[str, Any], token: str | None = "default", date: str = "2025-06-01"
    ) -> Any:
        # what SkyPilot's RestfulAdminPolicy sends: requests.post(json=<the encoded string>)
        body = json.dumps(self.user_request(task).encode())
        params = {"date": date}
        if token is not None:
            params["token"] = self.token if token == "default" else token
        return self.client.post(
            URL, params=params, content=body, headers={"Content-Type": "application/json"}
        )


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, example_path: Path, rules: RuleSet
) -> Iterator[Setup]:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('adm') / 's.db'}")
    sc = load_scenario(example_path)
    plan = make_plan(sc, rules=rules, time_limit=5)
    plan_id, _ = record_plan(store, sc, plan, rules, {}, tenant="hz-cloud", actor="test")
    inp = export_input(sc, plan.to_json(), rules, plan_id=plan_id)
    tasks = {
        doc["name"]: doc
        for path, text in exporter("skypilot").render(inp).files.items()
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc and "resources" in doc
    }
    token = create_token(store, "hz-cloud", "viewer")[0]
    with TestClient(create_app(store, settings=Settings())) as client:
        yield Setup(client, token, tasks, plan_id)


def _normal(config: dict[str, Any]) -> dict[str, Any]:
    """SkyPilot keeps ``any_of`` as a set: compare it in a fixed order."""
    out = copy.deepcopy(config)
    res = out.get("resources", {})
    if "any_of" in res:
        res["any_of"] = sorted(res["any_of"], key=lambda r: json.dumps(r, sort_keys=True))
    return out


def test_a_lawful_launch_passes_unchanged(setup: Setup) -> None:
    for name, task in setup.tasks.items():
        r = setup.post(task)
        assert r.status_code == 200, (name, r.text)
        original = setup.user_request(task)
        mutated = admin_policy.MutatedUserRequest.decode(r.json(), original)
        assert _normal(mutated.task.to_yaml_config()) == _normal(original.task.to_yaml_config())
        assert dict(mutated.skypilot_config) == {}


def test_an_unlawful_region_is_rejected_with_the_citation(setup: Setup) -> None:
    """Fine-tuning on Chinese users' personal data in Singapore: PIPL cross-border."""
    task = copy.deepcopy(setup.tasks["chat-72b-sft"])
    task["resources"] = {"any_of": [{"infra": "aws/ap-southeast-1", "accelerators": "H100:8"}]}
    r = setup.post(task)
    assert r.status_code == 400
    assert "cn-cbdf-2024-assessment" in r.text or "cn-pipl" in r.text, r.text
    assert "Cross-Border" in r.text or "PIPL" in r.text
    # SkyPilot turns a 400 into a rejection with our text
    assert r.text.startswith("Straits: launch rejected")


def test_one_unlawful_candidate_rejects_the_launch(setup: Setup) -> None:
    task = copy.deepcopy(setup.tasks["chat-72b-sft"])
    task["resources"]["any_of"].append({"infra": "kubernetes/my-johor", "accelerators": "H100:8"})
    r = setup.post(task)
    assert r.status_code == 400 and "my-johor" in r.text


def test_a_region_outside_the_scenario_is_rejected(setup: Setup) -> None:
    task = copy.deepcopy(setup.tasks["chat-72b-pretrain"])
    task["resources"] = {"any_of": [{"infra": "aws/us-east-1", "accelerators": "H100:8"}]}
    r = setup.post(task)
    assert r.status_code == 400 and "not a site" in r.text


def test_an_unplanned_gpu_launch_is_rejected_but_a_controller_passes(setup: Setup) -> None:
    gpu = {
        "name": "adhoc",
        "resources": {"infra": "aws/ap-southeast-1", "accelerators": "H100:8"},
        "run": "true",
    }
    r = setup.post(gpu)
    assert r.status_code == 400 and "STRAITS_PLAN_ID" in r.text
    controller = {"name": "jobs-controller", "resources": {"cpus": "4+"}, "run": "true"}
    assert setup.post(controller).status_code == 200


def test_the_policy_needs_a_token(setup: Setup) -> None:
    r = setup.post(setup.tasks["chat-72b-pretrain"], token=None)
    assert r.status_code == 401
    r = setup.post(setup.tasks["chat-72b-pretrain"], token="st_nope_nope")
    assert r.status_code == 401


def test_another_tenants_token_cannot_use_the_plan(setup: Setup) -> None:
    other = create_token(setup.client.app.state.store, "other-co", "viewer")[0]  # type: ignore[attr-defined]
    r = setup.post(setup.tasks["chat-72b-pretrain"], token=other)
    assert r.status_code == 400 and "not recorded" in r.text


def test_launches_can_be_recorded_in_the_ledger(setup: Setup) -> None:
    from straits.store import ledger

    store = setup.client.app.state.store  # type: ignore[attr-defined]
    planner = create_token(store, "hz-cloud", "planner")[0]
    before = ledger.count(store)
    lawful = setup.tasks["chat-72b-pretrain"]
    r = setup.client.post(
        URL,
        params={"token": planner, "date": "2025-06-01", "record": "true"},
        content=json.dumps(setup.user_request(lawful).encode()),
    )
    assert r.status_code == 200
    bad = copy.deepcopy(setup.tasks["chat-72b-sft"])
    bad["resources"] = {"any_of": [{"infra": "aws/ap-southeast-1", "accelerators": "H100:8"}]}
    r2 = setup.client.post(
        URL,
        params={"token": planner, "date": "2025-06-01", "record": "true"},
        content=json.dumps(setup.user_request(bad).encode()),
    )
    assert r2.status_code == 400
    entries = list(ledger.entries(store, since=before + 1))
    assert [e.kind for e in entries] == ["admission", "admission"]
    assert [e.content["result"]["allowed"] for e in entries] == [True, False]
    assert entries[1].content["inputs"]["stage"] == "sft"
    assert entries[1].content["result"]["rules"]
    assert str(entries[1].seq) == r2.headers["X-Straits-Ledger-Seq"]
    assert ledger.verify(store).ok
    # recording needs the planner role
    r3 = setup.client.post(
        URL,
        params={"token": setup.token, "record": "true"},
        content=json.dumps(setup.user_request(lawful).encode()),
    )
    assert r3.status_code == 403


# --- every form SkyPilot accepts ----------------------------------------------------------------
SFT_LAWFUL = [  # (resources, allowed): the fine-tune on personal data stays in China
    ({"infra": "k8s/cn-ulanqab", "accelerators": "H800:8"}, True),
    ({"infra": "kubernetes/cn-ulanqab", "accelerators": {"H800": 8, "Ascend910B": 8}}, True),
    ({"infra": "k8s/cn-ulanqab", "accelerators": ["H800:8", "Ascend910B:8"]}, True),
    ({"cloud": "kubernetes", "region": "hz-idc", "accelerators": "H20"}, True),
    (
        {
            "ordered": [
                {"infra": "k8s/hz-idc", "accelerators": "H20:8"},
                {"infra": "k8s/cn-ulanqab", "accelerators": "H800:8"},
            ]
        },
        True,
    ),
    ({"infra": "aws/ap-southeast-1", "accelerators": {"H100": 8, "H200": 8}}, False),
    (
        {
            "any_of": [
                {"infra": "k8s/cn-ulanqab", "accelerators": "H800:8"},
                {"infra": "aws/ap-southeast-1/ap-southeast-1a", "accelerators": "H100:8"},
            ]
        },
        False,
    ),
    ({"infra": "kubernetes", "accelerators": "H800:8"}, False),  # no region: could be anywhere
]


@pytest.mark.parametrize(("resources", "allowed"), SFT_LAWFUL)
def test_every_resources_form_is_read_as_skypilot_reads_it(
    setup: Setup, resources: dict[str, Any], allowed: bool
) -> None:
    task = copy.deepcopy(setup.tasks["chat-72b-sft"])
    task["resources"] = resources
    r = setup.post(task)
    assert r.status_code == (200 if allowed else 400), r.text


def test_candidates_expand_accelerator_sets_and_lists() -> None:
    from straits.admission import candidates

    for form in ({"H100": 8, "H200": 8}, ["H100:8", "H200:8"]):
        got = candidates({"resources": {"infra": "k8s/my-johor", "accelerators": form}})
        assert sorted((c.infra, c.accelerator, c.count) for c in got) == [
            ("kubernetes/my-johor", "H100", 8),
            ("kubernetes/my-johor", "H200", 8),
        ]


def test_a_task_skypilot_rejects_is_a_400_with_its_reason(setup: Setup) -> None:
    task = copy.deepcopy(setup.tasks["chat-72b-sft"])
    task["resources"] = {"infra": "k8s/cn-ulanqab", "acelerators": "H800:8"}  # misspelt
    body = json.dumps({"task": yaml.safe_dump(task), "skypilot_config": "{}"})
    r = setup.client.post(URL, params={"token": setup.token, "date": "2025-06-01"}, content=body)
    assert r.status_code == 400 and "acelerators" in r.text, r.text
