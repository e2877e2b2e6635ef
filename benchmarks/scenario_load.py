"""Reading a large scenario: the bounded YAML loader with libyaml's parser against PyYAML's
pure-Python one, measured in the same run on the same text.

``straits plan --time-limit`` counts loading in its budget (phase ``load``); with the
pure-Python parser a generated portfolio of 1,000 workloads over 200 sites took 1.3-3 s to
read on the 2-core development machine, and 2,560 stages 6 s. Both loaders check the same
limits (depth, aliases, duplicate keys, long integers) and give the same document; the figure
is the best of ``--runs`` (other processes only add time), the ratio fast / pure.

    .venv/bin/python benchmarks/scenario_load.py [--workloads 1000 --sites 200] [--runs 5]
"""

from __future__ import annotations

import argparse
import time

import yaml

from straits import safe_yaml
from straits.loading import parse_document, parse_scenario
from straits.simulate.generate import generate_dict


def best(fn: object, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return min(times)


def read(cls: object, text: str) -> object:
    loader = cls(text)  # type: ignore[operator]
    try:
        root = safe_yaml._root(loader)
        if loader.anchored:  # as safe_yaml.load: no anchor, no alias to expand
            safe_yaml.check_expansion(root)
        return loader.construct_document(root)
    finally:
        loader.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--workloads", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--sites", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if safe_yaml._FastLoader is None:
        raise SystemExit("PyYAML was built without libyaml: only the pure-Python parser here")
    print(f"{'portfolio':>12} {'bytes':>10} {'pure s':>8} {'libyaml s':>10} {'ratio':>6} "
          f"{'whole load s':>13}")  # fmt: skip
    for n in args.workloads:
        text = yaml.safe_dump(generate_dict(workloads=n, sites=args.sites, seed=20001))
        pure = best(lambda text=text: read(safe_yaml._Loader, text), args.runs)
        fast = best(lambda text=text: read(safe_yaml._FastLoader, text), args.runs)
        same = read(safe_yaml._Loader, text) == read(safe_yaml._FastLoader, text)
        whole = best(
            lambda text=text: parse_scenario(
                parse_document(text, source="gen"), source="gen", text=text
            ),
            args.runs,
        )
        print(
            f"{n:>6} x {args.sites:<3} {len(text):>10,} {pure:>8.2f} {fast:>10.2f} "
            f"{fast / pure:>6.2f} {whole:>13.2f}" + ("" if same else "  DOCUMENTS DIFFER")
        )
    print("whole load: the command's own reading (libyaml, limits, then the pydantic models)")


if __name__ == "__main__":
    main()
