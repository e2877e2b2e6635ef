"""The console's submit page reads a scenario with errors once (api65).

Before, a pasted or uploaded scenario the model refused was parsed, validated and composed (for
the first problem's line) to queue it, then parsed, validated and composed again
(``scenario_listing.scenario_problems``) to list every problem on the page: a 2 MiB scenario
took twice as long to be refused. Each reading of the posted text is counted here, as
``tests/test_plan_read_once.py`` counts the decodes of a stored plan; the page lists the same
problems, each with its path and line, as ``scenario_problems`` finds them."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

import straits.loading
from straits import safe_yaml
from straits.errors import ScenarioError
from straits.loading import scenario_from_text
from straits.model.scenario import Scenario
from straits.scenario_listing import scenario_problems
from straits.store import Store
from straits.store.tokens import create_token
from test_console import Browser

WHERE = re.compile(r'class="where" data-path="([^"]*)">(?:line (\d+))?')


class Readings:
    """How often ``text`` was parsed (as YAML or as JSON), composed and validated."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.text = ""
        self.counts: Counter[str] = Counter()
        load, compose, strict = (
            safe_yaml.load,
            safe_yaml.compose,
            vars(straits.loading)["_strict_json"],
        )
        validate = Scenario.model_validate

        def counted(name: str, f: Any) -> Any:
            def wrapped(text: str, *args: Any, **kwargs: Any) -> Any:
                if text == self.text:
                    self.counts[name] += 1
                return f(text, *args, **kwargs)

            return wrapped

        def counted_validate(cls: type[Scenario], *args: Any, **kwargs: Any) -> Scenario:
            self.counts["validated"] += 1
            return validate(*args, **kwargs)

        monkeypatch.setattr(safe_yaml, "load", counted("parsed", load))
        monkeypatch.setattr(safe_yaml, "compose", counted("composed", compose))
        monkeypatch.setattr(straits.loading, "_strict_json", counted("parsed", strict))
        monkeypatch.setattr(Scenario, "model_validate", classmethod(counted_validate))


@pytest.fixture
def planner(console: tuple[object, Store]) -> Iterator[Browser]:
    app, store = console
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    yield b


def _bad(demo_text: str) -> str:
    """The demo scenario with two problems of the model: a date and an unknown field."""
    bad = demo_text.replace("date: 2025-06-01", "date: not-a-date", 1)
    return bad.replace("straits: 1", "straits: 1\nbogus_field: 3", 1)


def _as_json(text: str) -> str:
    data = straits.loading.parse_document(text, source="t")
    return json.dumps(data, default=str, indent=1)


def shown(page: str) -> list[tuple[str, str]]:
    """The page's problems: (path, line) each."""
    return WHERE.findall(page)


@pytest.mark.parametrize("form", ["pasted", "pasted JSON", "uploaded"])
def test_a_scenario_with_problems_is_read_once_and_every_problem_shown(
    planner: Browser, demo_text: str, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    text = _as_json(_bad(demo_text)) if form == "pasted JSON" else _bad(demo_text)
    source = "uploaded file s.yaml" if form == "uploaded" else "pasted scenario"
    expected = [(e.path or "", str(e.line or "")) for e in scenario_problems(text, source=source)]
    assert len(expected) == 2  # the date and the unknown field, each with its line
    csrf = planner.csrf()
    readings = Readings(monkeypatch)
    readings.text = text
    if form == "uploaded":
        files = {"file": ("s.yaml", text.encode(), "application/yaml")}
        r = planner.client.post("/ui/submit", data={"csrf": csrf}, files=files)
    else:
        r = planner.client.post("/ui/submit", data={"csrf": csrf, "text": text})
    assert r.status_code == 400
    assert shown(r.text) == expected
    # parsed once; composed once, for every problem's line; validated once
    assert readings.counts == Counter(parsed=1, composed=1, validated=1)


def test_a_scenario_that_is_no_mapping_is_read_once(
    planner: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    csrf = planner.csrf()
    readings = Readings(monkeypatch)
    readings.text = "- a\n- b\n"
    r = planner.client.post("/ui/submit", data={"csrf": csrf, "text": readings.text})
    assert r.status_code == 400 and shown(r.text) == [("", "")]
    assert readings.counts == Counter(parsed=1)


def test_a_reference_the_scenario_lacks_is_validated_once(
    planner: Browser, demo_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A validator's own error (an unknown tenant: no pydantic error) was validated once to
    queue, again in ``scenario_problems`` and a third time in its fallback to say it as
    ``parse_scenario`` does; the page shows that one error, with its path and line."""
    text = demo_text.replace("tenant: hz-cloud", "tenant: nobody", 1)
    with pytest.raises(ScenarioError) as refused:
        scenario_from_text(text, source="pasted scenario")
    assert refused.value.path and refused.value.line
    csrf = planner.csrf()
    readings = Readings(monkeypatch)
    readings.text = text
    r = planner.client.post("/ui/submit", data={"csrf": csrf, "text": text})
    assert r.status_code == 400
    assert shown(r.text) == [(refused.value.path, str(refused.value.line))]
    assert readings.counts == Counter(parsed=1, composed=1, validated=1)
