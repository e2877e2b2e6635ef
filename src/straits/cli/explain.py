"""Rich rendering of decisions and reasons, shared by `check`, `plan` and `demo`."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from straits.cli.common import decision_style
from straits.rules.decision import Decision, Reason

OUTCOME_STYLE = {"deny": "red", "conditional": "yellow", "satisfied": "green"}


def reason_line(r: Reason, bullet: str = "•") -> Text:
    """'• <sentence> (<citation>; confidence V) [rule-id]'."""
    t = Text(f"  {bullet} ")
    if r.requires:
        style = OUTCOME_STYLE.get(r.outcome, "")
        tag = {"satisfied": f"satisfied by {r.satisfied_by}", "deny": "deny",
               "conditional": f"requires {r.requires}"}.get(r.outcome, r.outcome)
        t.append(f"[{tag}] ", style=style)
    t.append(r.text)
    t.append(f" ({r.citation}; confidence {r.confidence})", style="dim")
    t.append(f" [{r.rule}]", style="cyan")
    if r.reading:
        t.append(f"\n      reading: {r.reading}", style="dim italic")
    return t


def decision_view(d: Decision, title: str = "") -> Group:
    head = Text()
    if title:
        head.append(title + "  ", style="bold")
    head.append(d.decision.upper(), style=decision_style(d.decision))
    if d.requires:
        head.append("  requires: " + ", ".join(d.requires), style="yellow")
    if d.satisfied:
        head.append("  satisfied by held: " + ", ".join(d.satisfied), style="green")
    parts: list[Text] = [head]
    if d.reasons:
        parts.append(Text("  Rules that apply:", style="bold"))
        parts += [reason_line(r) for r in d.reasons]
    elif d.decision == "allow":
        parts.append(Text("  No rule restricts this request.", style="green"))
    if d.warnings:
        parts.append(Text("  Warnings (do not change the decision):", style="bold yellow"))
        parts += [reason_line(w, "!") for w in d.warnings]
    if d.notes:
        parts.append(Text("  Notes:", style="bold"))
        parts += [reason_line(n, "i") for n in d.notes]
    return Group(*parts)
