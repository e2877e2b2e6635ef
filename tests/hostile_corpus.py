"""The hostile-input corpus: scenario files, check and estimate requests and CLI flags that an
attacker or a careless script would send, each with the exit status and the words its one-line
error must carry. Built at import time from the shipped example and the DESIGN request, so the
cases track the formats; ``hostile_harness.py`` runs them.

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


def flag_cases() -> list[dict[str, Any]]:
    est = json.dumps(ESTIMATE)
    ex = str(ROOT / "examples" / "offshore-2025.yaml")
    flags: list[tuple[str, list[str], str | None, tuple[str, ...]]] = [
        ("estimate-chips-0", ["estimate", "--json", "--chips", "0"], est, ("--chips",)),
        ("estimate-chips-huge", ["estimate", "--json", "--chips", "9" * 30], est, ("chips",)),
        ("estimate-chips-negative", ["estimate", "--json", "--chips", "-5"], est, ("--chips",)),
        ("estimate-chips-text", ["estimate", "--json", "--chips", "many"], est, ("--chips",)),
        ("estimate-sweep-bogus", ["estimate", "--sweep", "price"], est, ("--sweep",)),
        ("plan-time-limit-nan", ["plan", ex, "--time-limit", "nan"], None, ("--time-limit",)),
        ("plan-time-limit-inf", ["plan", ex, "--time-limit", "inf"], None, ("--time-limit",)),
        ("plan-time-limit-huge", ["plan", ex, "--time-limit", "1e308"], None, ("--time-limit",)),
        ("plan-time-limit-zero", ["plan", ex, "--time-limit", "0"], None, ("--time-limit",)),
        ("plan-seed-negative", ["plan", ex, "--seed", "-1"], None, ("--seed",)),
        ("plan-seed-huge", ["plan", ex, "--seed", "9" * 40], None, ("--seed",)),
        ("plan-pareto-huge", ["plan", ex, "--pareto", "9" * 12], None, ("--pareto",)),
        ("plan-regime-bogus", ["plan", ex, "--regime", "anarchy"], None, ("--regime",)),
        ("plan-objective-bogus", ["plan", ex, "--objective", "vibes"], None, ("--objective",)),
        ("plan-missing-file", ["plan", "/nonexistent/x.yaml"], None, ("file not found",)),
        ("plan-directory", ["plan", str(ROOT / "examples")], None, ("directory",)),
        ("validate-dev-null", ["scenario", "validate", "/dev/null"], None, ("empty",)),
        (
            "generate-workloads-huge",
            ["scenario", "generate", "--workloads", "9" * 12],
            None,
            ("--workloads",),
        ),
        ("generate-sites-zero", ["scenario", "generate", "--sites", "0"], None, ("--sites",)),
        ("generate-regime-bogus", ["scenario", "generate", "--regime", "x"], None, ("--regime",)),
        (
            "generate-workloads-negative",
            ["scenario", "generate", "--workloads", "-1"],
            None,
            ("--workloads",),
        ),
        ("generate-seed-negative", ["scenario", "generate", "--seed", "-1"], None, ("--seed",)),
        ("generate-seed-2-32", ["scenario", "generate", "--seed", str(2**32)], None, ("--seed",)),
        (
            "generate-to-device",
            ["scenario", "generate", "-o", "/dev/null"],
            None,
            ("character device",),
        ),
        (
            "generate-to-directory-missing",
            ["scenario", "generate", "-o", "/proc/nope/x.yaml"],
            None,
            ("cannot write",),
        ),
        (
            "ledger-show-since-0",
            ["ledger", "show", "--since", "0", "--db", "sqlite://"],
            None,
            ("--since",),
        ),
        ("ledger-show-seq-huge", ["ledger", "show", "9" * 30, "--db", "sqlite://"], None, ("seq",)),
        (
            "ledger-show-limit-negative",
            ["ledger", "show", "--limit", "-3", "--db", "sqlite://"],
            None,
            ("--limit",),
        ),
        (
            "ledger-verify-dev-zero",
            ["ledger", "verify", "--file", "/dev/zero"],
            None,
            ("more than 16 MiB",),
        ),
        (
            "ledger-verify-bad-head",
            ["ledger", "verify", "--file", "/dev/null", "--head", "x"],
            None,
            ("--head",),
        ),
        (
            "ledger-export-to-device",
            ["ledger", "export", "--db", "sqlite://", "-o", "/dev/full"],
            None,
            ("character device",),
        ),
        ("db-url-garbage", ["ledger", "verify", "--db", "nosuchdb://x"], None, ("database URL",)),
        (
            "export-image-empty",
            ["export", ex, "--to", "kubernetes", "--image", "", "-o", "/tmp/x"],
            None,
            ("--image",),
        ),
        (
            "export-image-space",
            ["export", ex, "--to", "kubernetes", "--image", "a b", "-o", "/tmp/x"],
            None,
            ("--image",),
        ),
        (
            "export-image-newline",
            ["export", ex, "--to", "kubernetes", "--image", "i\nx: y", "-o", "/tmp/x"],
            None,
            ("--image",),
        ),
        (
            "check-record-actor-escape",
            ["check", "--json", "--record", "--db", "sqlite://", "--actor", "evil\x1b]0;title\x07"],
            json.dumps(DESIGN_REQUEST),
            ("--actor",),
        ),
        (
            "check-record-tenant-newline",
            ["check", "--json", "--record", "--db", "sqlite://", "--tenant", "a\nb"],
            json.dumps(DESIGN_REQUEST),
            ("--tenant",),
        ),
        (
            "token-tenant-escape",
            ["tokens", "create", "--tenant", "a\x1bb", "--role", "viewer", "--db", "sqlite://"],
            None,
            ("--tenant",),
        ),
        (
            "token-label-newline",
            [
                "tokens",
                "create",
                "--tenant",
                "a",
                "--label",
                "x\ny",
                "--role",
                "viewer",
                "--db",
                "sqlite://",
            ],
            None,
            ("--label",),
        ),
        (
            "export-target-bogus",
            ["export", ex, "--to", "carrier-pigeon", "-o", "/tmp/x"],
            None,
            ("--to",),
        ),
    ]
    return [
        case(f"flag:{name}", argv, stdin=stdin, words=words) for name, argv, stdin, words in flags
    ]


#: scheduler names that reach generated scripts and manifests unquoted (#SBATCH lines, shell
#: comments, echo lines) or the terminal: (field, hostile value)
TARGET_NAMES: list[tuple[str, str]] = [
    ("sites.0.targets.slurm.partition", "gpu\ntouch /tmp/straits-pwned"),
    ("sites.0.targets.slurm.account", "lab account"),
    ("sites.0.targets.slurm.cluster", "c$(touch /tmp/straits-pwned)"),
    ("sites.0.targets.slurm.cluster", "c[/]"),
    ("sites.0.targets.slurm.cluster", "c\x1b]0;title\x07"),
    ("sites.0.pools.0.targets.slurm_partition", "h100;id"),
    ("sites.0.pools.0.targets.slurm_gres", "gpu\nid"),
    ("sites.0.pools.0.targets.slurm_gres", "gpu:h100:8"),
    ("sites.0.targets.skypilot.cloud", "aws\nrun: id"),
    ("sites.0.targets.kubernetes.context", "ctx\x1b]0;title\x07"),
    ("sites.0.pools.0.targets.skypilot_accelerator", "H100\t"),
    # SkyPilot's infra parts that name no one place (exp30): '*' is any, '/' starts the next
    # part, spaces are stripped
    ("sites.0.targets.skypilot.region", "*"),
    ("sites.0.targets.skypilot.cloud", "aws/ap-southeast-1"),
    ("sites.0.targets.skypilot.region", "ap-southeast-1/ap-southeast-1a"),
    ("sites.0.targets.skypilot.zone", "*"),
    ("sites.0.targets.skypilot.region", " ap-southeast-1"),
]


def target_cases() -> list[dict[str, Any]]:
    out = [
        case(
            f"targets:{path}={value!r}",
            ["scenario", "validate", "{FILE}"],
            words=(_field(path),),
            files={"FILE": _yaml(_set(EXAMPLE, path, value))},
        )
        for path, value in TARGET_NAMES
    ]
    # what a real Slurm names: letters, digits, '.', '_', '+', '-' (and a GRES type after ':')
    for path, value in [
        ("sites.0.targets.slurm.partition", "gpu_a100-80g.x"),
        ("sites.0.pools.0.targets.slurm_gres", "gpu:h100"),
    ]:
        out.append(
            case(
                f"targets:{path}={value!r}",
                ["scenario", "validate", "{FILE}"],
                exit=0,
                files={"FILE": _yaml(_set(EXAMPLE, path, value))},
            )
        )
    return out


def empty_path_cases() -> list[dict[str, Any]]:
    """An unset shell variable as the output path: Path('') is the current directory."""
    ex = str(ROOT / "examples" / "offshore-2025.yaml")
    flags: list[tuple[str, list[str], str]] = [
        ("export", ["export", ex, "--to", "slurm", "-o", ""], "-o"),
        ("export-blank", ["export", ex, "--to", "slurm", "-o", "  "], "-o"),
        ("market-sweep", ["market", "sweep", "--runs", "2", "--out", ""], "--out"),
        ("market-run", ["market", "run", "-o", ""], "-o"),
        ("report", ["report", ex, "-o", ""], "-o"),
        ("demo-report", ["demo", "--report", ""], "--report"),
        ("keygen", ["ledger", "keygen", "-o", ""], "-o"),
        ("keygen-dot", ["ledger", "keygen", "-o", "."], "-o"),
        ("keygen-stdout", ["ledger", "keygen", "-o", "-"], "-o"),
        ("checkpoint", ["ledger", "checkpoint", "--db", "sqlite://", "-o", ""], "-o"),
        ("receipt", ["ledger", "receipt", "1", "--db", "sqlite://", "-o", ""], "-o"),
    ]
    return [case(f"empty-path:{name}", argv, words=(word,)) for name, argv, word in flags]


def _param(value: float) -> dict[str, Any]:
    return {"value": value, "source": "hostile corpus", "confidence": "M"}


def market_cases() -> list[dict[str, Any]]:
    """Market files that extend the shipped one with what it must refuse (and what it may
    run: no offshore capacity is a market, not an error)."""
    kinds = ("pretrain", "finetune", "serve_home", "serve_abroad")
    prices = {
        "base_chip": "H100-SXM",
        "elasticity": _param(1),
        "reference_utilisation": _param(0.8),
        "floor": _param(0.5),
        "cap": _param(2),
    }
    docs: list[tuple[str, dict[str, Any], int, tuple[str, ...]]] = [
        (
            "duplicate-month",
            {
                "prices": {
                    **prices,
                    "base": [
                        {"date": "2024-01", **_param(2.0)},
                        {"date": "2024-01", **_param(3.0)},
                    ],
                }
            },
            2,
            ("prices.base", "2024-01"),
        ),
        (
            "duplicate-month-mw",
            {
                "supply": {
                    "countries": {
                        "SG": {
                            "mw": [
                                {"date": "2025-03", **_param(10)},
                                {"date": "2025-03", **_param(20)},
                            ]
                        }
                    }
                }
            },
            2,
            ("supply.countries.SG.mw", "2025-03"),
        ),
        ("year-0", {"start": "0000-01", "end": "0001-12"}, 2, ("start",)),
        ("year-9999", {"start": "9999-01", "end": "9999-12"}, 2, ("start",)),
        (
            "point-year-0",
            {"supply": {"countries": {"SG": {"mw": [{"date": "0000-01", **_param(5)}]}}}},
            2,
            ("mw[0].date",),
        ),
        (
            "floor-above-cap",
            {
                "prices": {
                    **prices,
                    "base": [{"date": "2024-01", **_param(2)}],
                    "floor": _param(3),
                    "cap": _param(2),
                }
            },
            2,
            ("prices", "cap"),
        ),
        (
            "mix-all-zero",
            {"demand": {"mix_start": {k: _param(0) for k in kinds}}},
            2,
            ("mix_start",),
        ),
        (
            "zero-price",
            {"prices": {**prices, "base": [{"date": "2024-01", **_param(0)}]}},
            2,
            ("prices.base",),
        ),
        (
            "negative-price",
            {"prices": {**prices, "base": [{"date": "2024-01", **_param(-1)}]}},
            2,
            ("prices.base",),
        ),
        (
            "huge-range",
            {
                "demand": {
                    "shift_speed": {"low": 0, "high": 1e300, "source": "hostile", "confidence": "M"}
                }
            },
            2,
            ("demand.shift_speed",),
        ),
        (
            "no-capacity",
            {
                "supply": {
                    "countries": {
                        c: {"mw": [{"date": "2023-01", **_param(0)}], "ai_rental_share": _param(0)}
                        for c in ("SG", "MY")
                    }
                }
            },
            0,
            (),
        ),
        ("last-month", {"start": "2100-01", "end": "2100-12"}, 0, ()),
    ]
    out = [
        case(
            f"market:{name}",
            ["market", "run", "{FILE}", "--json", "--firms", "20"],
            exit=code,
            words=words,
            files={"FILE": _yaml({"extends": "shipped", **doc})},
        )
        for name, doc, code, words in docs
    ]
    # nothing listens there: refused at once (Ray itself retried for minutes), or "Ray is not
    # installed" where it is not
    out.append(
        case(
            "market:ray-address-closed-port",
            ["market", "sweep", "--runs", "2", "--ray-address", "127.0.0.1:1"],
            words=("ray",),
        )
    )
    out.append(
        case(
            "market:set-twice",
            [
                "market",
                "run",
                "--json",
                "--set",
                "demand.shift_speed=0.2",
                "--set",
                "demand.shift_speed=0.3",
            ],
            words=("--set", "demand.shift_speed"),
        )
    )
    out.append(
        case(
            "market:set-floor-above-cap",
            ["market", "run", "--json", "--set", "prices.floor=5"],
            words=("cap",),
        )
    )
    return out


def check_list_cases() -> list[dict[str, Any]]:
    """A list of check requests is capped (``limits.MAX_CHECK_REQUESTS``) before any is read."""
    from straits.limits import MAX_CHECK_REQUESTS

    small = {
        "date": "2025-06-01",
        "action": "train",
        "tenant": {"hq": "CN"},
        "site": {"country": "SG", "operator_hq": "SG"},
        "chip": "H100-SXM",
    }
    over = json.dumps([small] * (MAX_CHECK_REQUESTS + 1), separators=(",", ":"))
    # the last one is wrong too: the cap answers before any request is validated
    late_error = json.dumps(
        [small] * MAX_CHECK_REQUESTS + [{**small, "chip": "H300"}], separators=(",", ":")
    )
    no_chip = json.dumps([{k: v for k, v in small.items() if k != "chip"}])
    return [
        case(
            "check-list:over-cap",
            ["check", "--json"],
            stdin=over,
            words=(f"{MAX_CHECK_REQUESTS + 1:,} requests", f"{MAX_CHECK_REQUESTS:,}"),
        ),
        case(
            "check-list:over-cap-bad-last",
            ["check", "--json"],
            stdin=late_error,
            words=(f"{MAX_CHECK_REQUESTS:,}",),
        ),
        # a whole-request error names the item, not "[0].(top level)"
        case("check-list:no-chip", ["check", "--json"], stdin=no_chip, words=("[0]: action",)),
    ]


def estimate_shape_cases() -> list[dict[str, Any]]:
    """Extreme model shapes: what a transformer can be runs (the estimator says when it does
    not fit); a shape no model can have (7e9 parameters in layers of width 1, heads narrower
    than a dimension) is refused naming the model, never turned into 5,678 days at 0.01% MFU."""
    m = ESTIMATE["model"]
    shapes: list[tuple[str, dict[str, Any], int, tuple[str, ...]]] = [
        ("one-layer", {"layers": 1}, 0, ()),
        ("seq-len-1", {"seq_len": 1}, 0, ()),
        ("heads-not-dividing", {"heads": 33}, 0, ()),  # real models do (Gemma-7B: 16 x 256)
        ("moe-1e15-total", {"params": 1e15, "active_params": 7e9}, 0, ()),
        (
            "1e15-wide-and-deep",
            {"params": 1e15, "layers": 1000, "d_model": 100_000, "heads": 800},
            0,
            (),
        ),
        ("d-model-1", {"d_model": 1, "heads": 1}, 2, ("model", "width 1")),
        ("heads-over-d-model", {"d_model": 8, "heads": 32}, 2, ("model", "heads")),
        ("1e15-dense-narrow", {"params": 1e15}, 2, ("model",)),
        ("10000-layers-7b", {"layers": 10_000}, 2, ("model",)),
        ("d-model-1e6-7b", {"d_model": 1_000_000, "heads": 1}, 2, ("model",)),
    ]
    return [
        case(
            f"estimate-shape:{name}",
            ["estimate", "--json"],
            stdin=json.dumps({**ESTIMATE, "model": {**m, **over}}),
            exit=code,
            words=words,
        )
        for name, over, code, words in shapes
    ]


def corpus() -> list[dict[str, Any]]:
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
