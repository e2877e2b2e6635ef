"""The hostile-input corpus: scenario files, check and estimate requests and CLI flags that an
attacker or a careless script would send, each with the exit status and the words its one-line
error must carry. Built at import time from the shipped example and the DESIGN request, so the
cases track the formats; ``hostile_harness.py`` runs them. The scenario and request cases are
here; the CLI flag, target-name, empty-path, market, check-list and estimate-shape cases are in
``hostile_corpus_cli.py``, which ``corpus()`` combines with them.

A case is ``{"id", "argv", "stdin", "files", "exit", "words"}``: ``argv`` after ``straits``, with
``{FILE}`` replaced by the path of ``files["FILE"]`` (text, or ``{"bytes": hex}``), ``stdin`` the
text on standard input, ``exit`` the expected status, ``words`` what the error line contains.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_TEXT = (ROOT / "examples" / "offshore-2025.yaml").read_text()
EXAMPLE = yaml.safe_load(EXAMPLE_TEXT)
DESIGN_REQUEST: dict[str, Any] = {
    "date": "2025-06-01",
    "regime": "enacted",
    "action": "finetune",
    "tenant": {"hq": "CN", "authorizations": []},
    "site": {"country": "SG", "operator_hq": "SG"},
    "chip": "H100-SXM",
    "data": {"origin": "CN", "classes": ["personal"], "subjects": 3000000, "sensitive_subjects": 0},
    "weights": {"training_ops": 3e25, "open": False, "from_country": "SG"},
}
ESTIMATE: dict[str, Any] = {
    "model": {"params": 7e9, "layers": 32, "d_model": 4096, "heads": 32},
    "tokens": 1e11,
    "chip": "H100-SXM",
    "chips": 64,
}

#: numbers no field accepts: (label, value as the document holds it)
BAD_NUMBERS: list[tuple[str, Any]] = [
    ("inf", float("inf")),
    ("-inf", float("-inf")),
    ("nan", float("nan")),
    ("1e308", 1e308),
    ("400-digits", 10**400),
    ("-1", -1),
]
#: one field of each kind in the example scenario (the rest share their types)
SCENARIO_NUMBERS = [
    "sites.0.wan_gbps",
    "sites.0.egress_usd_per_gb",
    "sites.0.targets.slurm.gpus_per_node",
    "sites.0.pools.0.count",
    "sites.0.pools.0.usd_per_chip_hour",
    "sites.3.pools.0.procurable.max",
    "sites.3.pools.0.procurable.usd_per_chip",
    "sites.3.pools.0.procurable.lead_days",
    "sites.3.pools.0.procurable.amortize_years",
    "datasets.0.tokens",
    "datasets.0.size_gb",
    "datasets.1.subjects",
    "datasets.1.sensitive_subjects",
    "workloads.0.model.params",
    "workloads.0.model.layers",
    "workloads.0.model.d_model",
    "workloads.0.model.heads",
    "workloads.0.model.seq_len",
    "workloads.0.budget_usd",
    "workloads.0.late_penalty_usd_per_day",
    "workloads.0.stages.2.chips",
    "workloads.0.stages.2.days",
    "horizon_days",
    "workloads.0.weight",
    "straits",
]
CHECK_NUMBERS = [
    "data.subjects",
    "data.sensitive_subjects",
    "data.prior_subjects_ytd",
    "weights.training_ops",
    "quantity",
]
ESTIMATE_NUMBERS = [
    "tokens",
    "chips",
    "model.params",
    "model.layers",
    "model.seq_len",
    "usd_per_chip_hour",
    "pue",
    "grid_gco2_per_kwh",
]


def _set(doc: Any, path: str, value: Any) -> Any:
    doc = copy.deepcopy(doc)
    parts: list[Any] = [int(p) if p.isdigit() else p for p in path.split(".")]
    target = doc
    for p in parts[:-1]:
        target = target[p]
    target[parts[-1]] = value
    return doc


def _field(path: str) -> str:
    """``sites.0.pools.0.count`` -> ``sites[0].pools[0].count`` (how errors name it)."""
    out = ""
    for p in path.split("."):
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out


def _yaml(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, width=1000)


def _json(doc: Any) -> str:
    return json.dumps(doc)  # writes NaN/Infinity for the bad numbers: not JSON, as intended


def case(
    cid: str,
    argv: list[str],
    *,
    exit: int = 2,
    words: tuple[str, ...] = (),
    stdin: str | None = None,
    files: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": cid,
        "argv": argv,
        "stdin": stdin,
        "files": files or {},
        "exit": exit,
        "words": list(words),
    }


def scenario_cases() -> list[dict[str, Any]]:
    out = []
    for path in SCENARIO_NUMBERS:
        for label, value in BAD_NUMBERS:
            text = _yaml(_set(EXAMPLE, path, value))
            # a 400-digit integer is refused while parsing, before any field is known
            words: tuple[str, ...] = ("digits",) if label == "400-digits" else (_field(path),)
            out.append(
                case(
                    f"scenario:{path}={label}",
                    ["scenario", "validate", "{FILE}"],
                    words=words,
                    files={"FILE": text},
                )
            )
    head = EXAMPLE_TEXT
    bomb = (
        "a: &a ["
        + ",".join(['"lol"'] * 9)
        + "]\n"
        + "".join(
            f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]\n"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        )
    )
    structural: list[tuple[str, Any, tuple[str, ...], int]] = [
        ("alias-bomb", head + bomb, ("aliases expand",), 2),
        ("recursive-alias", head + "x: &x [*x]\n", ("alias refers",), 2),
        ("deep-flow", "a: " + "[" * 20000 + "]" * 20000, ("nested deeper",), 2),
        ("deep-block", "".join("  " * i + "k:\n" for i in range(300)), ("nested deeper",), 2),
        ("deep-json", "[" * 100000 + "]" * 100000, ("nested deeper",), 2),
        ("deep-json-objects", '{"a":' * 5000 + "1" + "}" * 5000, ("nested deeper",), 2),
        # an explicit tag on text it cannot hold raised ValueError, IndexError or KeyError from
        # inside PyYAML: a traceback
        ("tag-int-text", head + "x: !!int zz\n", ("not an integer",), 2),
        ("tag-int-empty", head + "x: !!int\n", ("not an integer",), 2),
        ("tag-int-hex-empty", head + "x: !!int 0x\n", ("not an integer",), 2),
        ("tag-float-text", head + "x: !!float .\n", ("not a number",), 2),
        ("tag-bool-text", head + "x: !!bool maybe\n", ("not true or false",), 2),
        (
            "duplicate-country",
            head.replace("    country: SG\n", "    country: SG\n    country: CN\n", 1),
            ("duplicate key 'country'", "first at line"),
            2,
        ),
        ("duplicate-top-key", head + "name: again\n", ("duplicate key 'name'",), 2),
        ("duplicate-json-key", '{"straits": 1, "straits": 1}', ("duplicate key",), 2),
        (
            "impossible-date",
            head.replace("date: 2025-06-01", "date: 2025-06-31", 1),
            ("date", "day value"),
            2,
        ),
        (
            "far-future-date",
            head.replace("date: 2025-06-01", "date: 9999-12-31", 1),
            ("date", "outside the dates"),
            2,
        ),
        (
            "ancient-date",
            head.replace("date: 2025-06-01", "date: 0001-01-01", 1),
            ("date", "outside the dates"),
            2,
        ),
        ("month-13", head.replace("date: 2025-06-01", "date: 2025-13-01", 1), ("date",), 2),
        ("date-as-int", head.replace("date: 2025-06-01", "date: 20250601", 1), ("date",), 2),
        (
            "deadline-9999",
            head.replace("deadline: 2025-12-31", "deadline: 9999-12-31", 1),
            ("deadline", "outside the dates"),
            2,
        ),
        (
            "python-tag",
            head + "evil: !!python/object/apply:os.system ['true']\n",
            ("not valid YAML",),
            2,
        ),
        ("unknown-tag", head + "evil: !foo bar\n", ("not valid YAML",), 2),
        ("binary-tag", head + "blob: !!binary aGVsbG8=\n", ("unknown field",), 2),
        ("nul-bytes", head.replace("name:", "na\0me:", 1), ("not allowed",), 2),
        ("empty", "", ("empty",), 2),
        ("only-comments", "# nothing\n# here\n", ("mapping",), 2),
        ("top-level-list", "- 1\n- 2\n", ("mapping at the top level",), 2),
        ("top-level-scalar", "42\n", ("mapping at the top level",), 2),
        ("truncated-half", head[: len(head) // 2], (), 2),
        ("truncated-flow", "straits: 1\nsites: [{id: a, pools: [", ("not valid YAML",), 2),
        ("unterminated-string", 'name: "abc\n', ("not valid YAML",), 2),
        (
            "tab-indent",
            head.replace("  - id: hz-cloud", "\t- id: hz-cloud", 1),
            ("not valid YAML",),
            2,
        ),
        ("unhashable-key", head + "[a, b]: c\n", (), 2),
        ("huge-id", head.replace("name: offshore-2025", "name: " + "x" * 10000, 1), ("name",), 2),
        (
            "long-source",
            head.replace(
                '    source: "illustrative Singapore',
                '    source: "' + "y" * 5000 + " illustrative Singapore",
                1,
            ),
            ("sites[0].source",),
            2,
        ),
        ("unknown-field", head + "colour: blue\n", ("colour", "unknown field"), 2),
        ("merge-not-mapping", head + "x:\n  <<: 5\n", ("not valid YAML",), 2),
        (
            "huge-list",
            head.replace(
                "authorizations: []",
                "authorizations: [" + ",".join(["bis-license"] * 20000) + "]",
                1,
            ),
            (),
            0,
        ),
        ("bom", "\ufeff" + head, (), 0),
        ("crlf", head.replace("\n", "\r\n"), (), 0),
        ("merge-keys", head + "x: &d {a: 1}\n", ("x", "unknown field"), 2),
        (
            "latin-1",
            {"bytes": head.replace("offshore-2025", "offshore-\xe9").encode("latin-1").hex()},
            ("not UTF-8",),
            2,
        ),
        ("random-binary", {"bytes": bytes(range(256)).hex() * 8}, ("not UTF-8",), 2),
        ("bool-country", head.replace("hq: CN", "hq: NO", 1), ("quote country codes",), 2),
        ("negative-zero-count", head.replace("count: 4096", "count: -0.0", 1), (), 0),
    ]
    # one workload of 50,000 stages in a chain: validating it was quadratic in the stages
    # (14 s at 20,000, past this harness's 60 s at 50,000); JSON, so parsing is not the cost
    chain = copy.deepcopy(EXAMPLE)
    chain["workloads"][0]["stages"] = [
        {
            "id": f"s{i}",
            "kind": "finetune",
            "datasets": ["cn-dialogs"],
            "tokens": 1e6,
            **({"after": [f"s{i - 1}"]} if i else {}),
        }
        for i in range(50_000)
    ]
    structural.append(("chain-50000-stages", json.dumps(chain, default=str), (), 0))
    for name, text, words, code in structural:
        out.append(
            case(
                f"scenario:{name}",
                ["scenario", "validate", "{FILE}"],
                exit=code,
                words=words,
                files={"FILE": text},
            )
        )
    # the same loader behind every command that reads a scenario
    for name in ("alias-bomb", "duplicate-country", "impossible-date"):
        text = next(t for n, t, *_ in structural if n == name)
        out.append(
            case(
                f"plan:{name}",
                ["plan", "{FILE}", "--solver", "greedy"],
                words=(),
                files={"FILE": text},
            )
        )
    return out


def request_cases() -> list[dict[str, Any]]:
    out = []
    for path in CHECK_NUMBERS:
        for label, value in BAD_NUMBERS:
            doc = _set(DESIGN_REQUEST, path, value)
            words: tuple[str, ...] = (
                () if label in ("inf", "-inf", "nan", "400-digits") else (_field(path),)
            )
            out.append(
                case(f"check:{path}={label}", ["check", "--json"], stdin=_json(doc), words=words)
            )
    for path in ESTIMATE_NUMBERS:
        for label, value in BAD_NUMBERS:
            doc = _set(ESTIMATE, path, value)
            words = () if label in ("inf", "-inf", "nan", "400-digits") else (_field(path),)
            out.append(
                case(
                    f"estimate:{path}={label}",
                    ["estimate", "--json"],
                    stdin=_json(doc),
                    words=words,
                )
            )
    shapes: list[tuple[str, list[str], str, tuple[str, ...]]] = [
        ("check-empty", ["check", "--json"], "", ("empty",)),
        ("check-whitespace", ["check", "--json"], "   \n\t ", ("empty",)),
        ("check-empty-list", ["check", "--json"], "[]", ("non-empty list",)),
        ("check-list-of-numbers", ["check", "--json"], "[1, 2]", ("[0]", "object")),
        ("check-string", ["check", "--json"], '"finetune"', ("object",)),
        ("check-null", ["check", "--json"], "null", ("object",)),
        (
            "check-no-action",
            ["check", "--json"],
            json.dumps({k: v for k, v in DESIGN_REQUEST.items() if k != "action"}),
            ("action",),
        ),
        (
            "check-bad-action",
            ["check", "--json"],
            json.dumps({**DESIGN_REQUEST, "action": "teleport"}),
            ("action",),
        ),
        (
            "check-bad-date",
            ["check", "--json"],
            json.dumps({**DESIGN_REQUEST, "date": "2025-02-30"}),
            ("date",),
        ),
        (
            "check-date-9999",
            ["check", "--json"],
            json.dumps({**DESIGN_REQUEST, "date": "9999-12-31"}),
            ("date",),
        ),
        (
            "check-nested",
            ["check", "--json"],
            '{"tenant":' * 3000 + "1" + "}" * 3000,
            ("nested deeper",),
        ),
        (
            "check-unknown-chip",
            ["check", "--json"],
            json.dumps({**DESIGN_REQUEST, "chip": "H300"}),
            ("chip",),
        ),
        (
            "check-tenant-list",
            ["check", "--json"],
            json.dumps({**DESIGN_REQUEST, "tenant": [1]}),
            ("tenant",),
        ),
        (
            "check-dup-key",
            ["check", "--json"],
            '{"date": "2025-06-01", "date": "2025-06-02"}',
            ("duplicate key 'date'",),
        ),
        ("check-binary", ["check", "--json"], "\x00\x01\x02", ()),
        ("check-truncated", ["check", "--json"], json.dumps(DESIGN_REQUEST)[:-20], ()),
        ("estimate-list", ["estimate", "--json"], "[1]", ("object",)),
        (
            "estimate-no-model",
            ["estimate", "--json"],
            '{"chip": "H100-SXM", "tokens": 1e9}',
            ("model",),
        ),
        (
            "estimate-serve-no-days",
            ["estimate", "--json"],
            json.dumps({**ESTIMATE, "kind": "serve"}),
            ("days",),
        ),
        (
            "estimate-active-gt-total",
            ["estimate", "--json"],
            json.dumps({**ESTIMATE, "model": {**ESTIMATE["model"], "active_params": 1e12}}),
            ("active_params",),
        ),
        (
            "estimate-kv-gt-heads",
            ["estimate", "--json"],
            json.dumps({**ESTIMATE, "model": {**ESTIMATE["model"], "kv_heads": 64}}),
            ("kv_heads",),
        ),
        (
            "estimate-string-numbers",
            ["estimate", "--json"],
            json.dumps({**ESTIMATE, "tokens": "lots"}),
            ("tokens",),
        ),
    ]
    for name, argv, stdin, words in shapes:
        out.append(case(f"request:{name}", argv, stdin=stdin, words=words))
    return out


def corpus() -> list[dict[str, Any]]:
    # the CLI-level cases live in hostile_corpus_cli.py, which imports this module's helpers
    from hostile_corpus_cli import (
        check_list_cases,
        empty_path_cases,
        estimate_shape_cases,
        flag_cases,
        market_cases,
        target_cases,
    )

    return [
        *scenario_cases(),
        *request_cases(),
        *flag_cases(),
        *target_cases(),
        *empty_path_cases(),
        *market_cases(),
        *check_list_cases(),
        *estimate_shape_cases(),
    ]
