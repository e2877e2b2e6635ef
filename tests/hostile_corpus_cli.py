"""The hostile-input corpus, second half: CLI flags, scheduler target names, empty output
paths, market files, check-request lists and extreme estimate shapes, each a case as
``hostile_corpus.case`` builds it. ``hostile_corpus.corpus()`` combines them with the scenario
and request cases kept in ``hostile_corpus.py``.
"""

from __future__ import annotations

import json
from typing import Any

from hostile_corpus import DESIGN_REQUEST, ESTIMATE, EXAMPLE, ROOT, _field, _set, _yaml, case


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
