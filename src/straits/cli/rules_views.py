"""How ``straits rules`` prints: case failures, coverage, pack versions, diffs and replays."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from straits.cli.common import console

if TYPE_CHECKING:
    from straits.rules.cases import CaseResult
    from straits.rules.coverage import CoverageReport
    from straits.rules.listing import RuleDiff
    from straits.rules.pack_loader import Pack
    from straits.rules.replay import Outcome, Replay
    from straits.rules.versions import PackDiff


def rule_diff(result: RuleDiff) -> None:
    """`rules diff` between dates or regimes, as text: the counts, then each rule added/removed."""
    console.print(
        Text(
            f"From {result.before} to {result.after}: {len(result.added)} added, "
            f"{len(result.removed)} removed, {result.unchanged} unchanged.",
            style="bold",
        )
    )
    for sign, style, group in (("+", "green", result.added), ("-", "red", result.removed)):
        for r in group:
            line = Text(f"  {sign} {r.id}", style=style)
            line.append(f"  [{r.effect}{' ' + r.requires if r.requires else ''}] {r.title}")
            line.append(f" ({r.citation}; confidence {r.confidence})", style="dim")
            console.print(line)


def failure(res: CaseResult) -> Text:
    t = Text(f"FAIL {res.case.file}: {res.case.name}\n", style="bold red")
    for p in res.problems:
        t.append(f"  {p}\n", style="red")
    t.append(f"  request:  {res.case.raw_request}\n", style="dim")
    t.append(f"  expected: {res.case.expect.model_dump(exclude_none=True)}\n")
    actual = res.actual
    applied = [r.rule for r in (*actual.reasons, *actual.warnings, *actual.notes)]
    t.append(
        f"  actual:   decision={actual.decision} requires={list(actual.requires)} rules={applied}"
    )
    return t


def coverage_lines(report: CoverageReport, *, detail: bool) -> None:
    """One line per pack; with ``detail`` every policy and its uncovered conditions, else only
    what is missing."""
    for pack in report.packs:
        n = len(pack.policies)
        covered = sum(p.covered for p in pack.policies)
        conds = sum(len(p.conditions) for p in pack.policies)
        conds_ok = sum(p.conditions_covered for p in pack.policies)
        style = "green" if covered == n else "red"
        console.print(
            Text(
                f"{pack.pack} {pack.version}: policies {pack.policy_pct:g}% "
                f"({covered}/{n}), conditions {pack.condition_pct:g}% "
                f"({conds_ok}/{conds})",
                style=style,
            )
        )
        for p in pack.policies:
            missing = [c for c in p.conditions if not c.covered]
            if not detail and p.covered and not missing:
                continue
            head = Text(f"  {p.rule.id}", style="bold" if p.covered else "bold red")
            head.append(
                f"  applied in {p.applied}/{p.cases} cases"
                + ("" if p.covered else ": NO CASE OF ITS PACK MAKES IT APPLY"),
                style="" if p.covered else "red",
            )
            head.append(f"  ({p.rule.file}:{p.rule.line})", style="dim")
            console.print(head, soft_wrap=True)
            for c in p.conditions if detail else missing:
                mark = "ok " if c.covered else "-- "
                if not c.covered:
                    need = (
                        "never let the rule through"
                        if c.passed == 0
                        else "never stopped the rule: add a case where it fails and the "
                        "conditions before it hold"
                    )
                else:
                    need = f"passed {c.passed}, stopped {c.stopped}" + (
                        " (guard)" if c.guard else ""
                    )
                # an `unless` condition's text says so already ("unless unless { ... }")
                kind = "" if c.text.startswith(f"{c.kind} ") else f"{c.kind} "
                line = Text(f"    {mark}{c.index}. {kind}", style="dim" if c.covered else "")
                line.append(c.text, style="" if c.covered else "yellow")
                line.append(f"  {need}", style="dim" if c.covered else "red")
                console.print(line, soft_wrap=True)


def packs_table(packs: list[Pack]) -> Table:
    t = Table(title=f"{len(packs)} rule packs", title_justify="left")
    for col in (
        "pack",
        "version",
        "released",
        "rules",
        "jurisdiction",
        "policy digest",
        "latest change",
    ):
        t.add_column(col, no_wrap=col in ("pack", "version", "policy digest"))
    for p in packs:
        state = {True: "yes", False: "[red]unreleased changes[/red]", None: "-"}[p.released]
        latest = p.changelog[0].changes[0] if p.changelog else "-"
        when = f"{p.changelog[0].date}: " if p.changelog else ""
        t.add_row(
            p.name,
            p.version,
            state,
            str(len(p.rules)),
            p.jurisdiction,
            p.policy_digest[:16],
            when + latest,
        )
    return t


def pack_diff(d: PackDiff) -> None:
    j = d.to_json()
    console.print(
        Text(
            f"{j['added']} added, {j['removed']} removed, {j['changed_in_effect']} "
            f"changed in effect, {j['changed_annotations_only']} changed in "
            "annotations only",
            style="bold",
        )
    )
    for p in d.packs:
        if not p.changed:
            continue
        console.print(
            Text(
                f"\n{p.pack}: {p.before or '(new)'} -> {p.after or '(removed)'}"
                + (" (unreleased changes)" if p.released is False else ""),
                style="bold",
            )
        )
        for rel in p.releases:
            console.print(Text(f"  release {rel.version} ({rel.date})", style="cyan"))
            for sentence in rel.changes:
                console.print(Text(f"    - {sentence}", style="dim"), soft_wrap=True)
        for c in p.rules:
            r = c.rule
            sign, style = {
                "added": ("+", "green"),
                "removed": ("-", "red"),
                "changed": ("~", "yellow"),
            }[c.kind]
            what = (
                ""
                if c.kind != "changed"
                else (" (in effect)" if c.in_effect else " (annotations only)")
            )
            line = Text(f"  {sign} {r.id}{what}", style=style)
            line.append(
                f"  [{r.effect}{' ' + r.requires if r.requires else ''}"
                f"{', ' + r.presumption if r.presumption else ''}] {r.title}"
            )
            line.append(f" ({r.citation}; confidence {r.confidence})", style="dim")
            console.print(line, soft_wrap=True)
            for detail in c.details():
                console.print(Text(f"      {detail}", style="dim"), soft_wrap=True)
        for g in p.groups:
            label = {"added": "new group", "removed": "removed group", "changed": "group"}[g.kind]
            parts = [f"+{m}" for m in g.added] + [f"-{m}" for m in g.removed]
            if g.includes is not None:
                parts.append(
                    f"includes {', '.join(g.includes[1]) or 'nothing'}"
                    + (
                        ""
                        if g.kind == "added"
                        else f" (was {', '.join(g.includes[0]) or 'nothing'})"
                    )
                )
            console.print(
                Text(f"  {label} {g.group}: {' '.join(parts) or 'no members'}", style="yellow"),
                soft_wrap=True,
            )


def _outcome(o: Outcome) -> str:
    return o.decision + (f" ({', '.join(o.requires)})" if o.requires else "")


def replay_view(r: Replay) -> None:
    j = r.to_json()
    done = j["replayed"]
    packs = ", ".join(f"{p['name']} {p['version']}" for p in r.candidate)
    console.print(
        Text(
            f"Replayed {r.entries} ledger entries recorded since {r.since}"
            + (f" for {r.tenant}" if r.tenant else "")
            + (f" (entries {r.first_seq}..{r.last_seq})" if r.first_seq else "")
            + f": {done['decisions']} decisions, {done['plans']} plans "
            f"({done['placements']} placements)",
            style="bold",
        )
    )
    console.print(Text(f"candidate packs: {packs}", style="dim"), soft_wrap=True)
    if not r.changes and r.skipped:
        n = len(r.skipped)
        console.print(
            Text(
                f"No replayed decision would change, but {n} entr{'y' if n == 1 else 'ies'} "
                "could not be replayed (below): what they would decide is not known.",
                style="bold yellow",
            )
        )
    elif not r.changes:
        console.print(Text("No recorded decision would change.", style="bold green"))
    else:
        console.print(
            Text(
                f"{len(r.changes)} would change: {j['stricter']} stricter, "
                f"{j['looser']} looser, "
                f"{len(r.changes) - j['stricter'] - j['looser']} needing other "
                "authorizations",
                style="bold yellow",
            )
        )
    t = Table(show_header=bool(r.changes), title_justify="left")
    if r.changes:
        for col in ("entry", "tenant", "what", "before", "after", "rule"):
            # rule ids are typed by people: folded whole, never cut with an ellipsis
            t.add_column(
                col,
                no_wrap=col in ("entry", "before", "after"),
                overflow="fold" if col == "rule" else "ellipsis",
                min_width=30 if col == "rule" else None,
            )
    for c in r.changes:
        why = [f"+{x.rule}" for x in c.now_blocking] + [f"-{x}" for x in c.lifted]
        if c.from_candidate is False:
            why.append("(already with the packs loaded now)")
        t.add_row(
            f"{c.seq} {c.kind}",
            c.tenant,
            c.subject,
            _outcome(c.before),
            _outcome(c.after),
            " ".join(why),
        )
    if r.changes:
        console.print(t)
        # each rule that now blocks, once per distinct reason, with the entries it touches
        seen: dict[tuple[str, str], list[int]] = {}
        cites: dict[tuple[str, str], str] = {}
        for c in r.changes:
            for reason in c.now_blocking:
                key = (reason.rule, reason.text)
                seen.setdefault(key, [])
                if c.seq not in seen[key]:
                    seen[key].append(c.seq)
                cites[key] = f"{reason.citation}; confidence {reason.confidence}"
        for (rule, text), seqs in seen.items():
            where = ", ".join(str(x) for x in seqs)
            console.print(
                Text(
                    f"  {rule} (entr{'y' if len(seqs) == 1 else 'ies'} {where}): "
                    f"{text} ({cites[(rule, text)]})",
                    style="dim",
                ),
                soft_wrap=True,
            )
    if r.reasons_changed:
        console.print(
            Text(
                f"{r.reasons_changed} decision(s) stay the same but now rest on "
                "other rules (see --json).",
                style="dim",
            )
        )
    if r.unplaced:
        console.print(
            Text(
                f"{r.unplaced} stage(s) the replayed plans left unplaced are not "
                "re-checked: `straits impact` re-plans them.",
                style="dim",
            )
        )
    for s in r.skipped:
        console.print(
            Text(f"skipped entry {s.seq} ({s.kind}): {s.reason}", style="yellow"), soft_wrap=True
        )
