"""Rich rendering of decisions and reasons, shared by `check`, `plan`, `impact` and `demo`.

Everything renders from the JSON contracts (a reason's or a decision's ``to_json()``), so an
answer from a remote server or a plan document read from a file looks exactly like one made
here. Long lines wrap under their own text (a hanging indent), never back to column 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.text import Text

from straits.cli.common import decision_style

OUTCOME_STYLE = {"deny": "red", "conditional": "yellow", "satisfied": "green"}


class Hanging:
    """``prefix`` then ``body``, wrapped to the console's width with every line after the
    first starting under the body's first character (a hanging indent), no trailing blanks."""

    def __init__(self, prefix: Text, body: Text) -> None:
        self.prefix, self.body = prefix, body

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        pad = self.prefix.cell_len
        width = max(options.max_width - pad, 20)
        for i, line in enumerate(self.body.wrap(console, width, overflow="fold")):
            line.rstrip()
            yield Text.assemble(self.prefix if i == 0 else " " * pad, line)


def hanging(prefix: str, body: str | Text, style: str = "") -> Hanging:
    return Hanging(Text(prefix, style=style), body if isinstance(body, Text) else Text(body))


def _as_json(r: Any) -> Mapping[str, Any]:
    return r if isinstance(r, Mapping) else r.to_json()


def reason_text(r: Any) -> Text:
    """'[requires X] <sentence> (<citation>; confidence V) [rule-id]' of a reason (its JSON
    or a :class:`~straits.rules.decision.Reason`)."""
    j = _as_json(r)
    t = Text()
    if j.get("requires"):
        outcome = str(j.get("outcome", ""))
        tag = {
            "satisfied": f"satisfied by {j.get('satisfied_by')}",
            "deny": "deny",
            "conditional": f"requires {j['requires']}",
        }.get(outcome, outcome)
        t.append(f"[{tag}] ", style=OUTCOME_STYLE.get(outcome, ""))
    t.append(str(j.get("text") or j.get("title") or j.get("rule")))
    t.append(f" ({j.get('citation')}; confidence {j.get('confidence')})", style="dim")
    t.append(f" [{j.get('rule')}]", style="cyan")
    if j.get("reading"):
        t.append(f"\nreading: {j['reading']}", style="dim italic")
    return t


def reason_line(r: Any, bullet: str = "•", indent: int = 2) -> Hanging:
    """One reason as a bullet with a hanging indent."""
    return hanging(" " * indent + bullet + " ", reason_text(r))


def decision_view_json(d: Mapping[str, Any], title: str = "") -> Group:
    """A decision (the `check` answer) with its reasons, warnings and notes."""
    head = Text()
    if title:
        head.append(title + "  ", style="bold")
    decision = str(d.get("decision", "?"))
    head.append(decision.upper(), style=decision_style(decision))
    if d.get("requires"):
        head.append("  requires: " + ", ".join(d["requires"]), style="yellow")
    if d.get("satisfied"):
        head.append("  satisfied by held: " + ", ".join(d["satisfied"]), style="green")
    parts: list[RenderableType] = [Hanging(Text(""), head)]
    if d.get("reasons"):
        parts.append(Text("  Rules that apply:", style="bold"))
        parts += [reason_line(r) for r in d["reasons"]]
    elif decision == "allow":
        parts.append(Text("  No rule restricts this request.", style="green"))
    if d.get("warnings"):
        parts.append(Text("  Warnings (do not change the decision):", style="bold yellow"))
        parts += [reason_line(w, "!") for w in d["warnings"]]
    if d.get("notes"):
        parts.append(Text("  Notes:", style="bold"))
        parts += [reason_line(n, "i") for n in d["notes"]]
    if d.get("ignored"):
        fields = ", ".join(str(f) for f in d["ignored"])
        parts.append(
            hanging(
                "  Ignored: ",
                f"{fields} (no rule reads it for this action: it changed nothing)",
                style="bold yellow",
            )
        )
    return Group(*parts)


def decision_view(d: Any, title: str = "") -> Group:
    """A :class:`~straits.rules.decision.Decision` (or its JSON)."""
    return decision_view_json(_as_json(d), title)
