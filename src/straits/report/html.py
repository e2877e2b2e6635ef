"""A small builder of offline HTML pages: a title, sections, paragraphs, tables, Plotly figures.

The page is one file that opens without a network, rendered through the report templates
(``report/templates/sections.html.j2``): the plan report's stylesheet and chart drawing,
Plotly's bundle inlined once (only when the page has a figure), every text escaped by Jinja2.
Figures get stable ids (``fig-1``, ``fig-2``...) so the same content renders the same bytes.
Typical use::

    page = Page("Market view", subtitle="shipped example, enacted rules")
    sec = page.section("Offshore demand", "Chip-hours rented abroad by home firms.")
    sec.figure(fig)                       # a plotly.graph_objects.Figure
    sec.table(["month", "MY"], [["2025-05", 1234]])
    html_text = page.render()             # or page.write(Path("report.html"))

Plotly is imported only when a figure is rendered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def fmt(value: object) -> str:
    """Numbers for people: thousands separators, at most 3 significant decimals."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:,.3g}" if abs(value) >= 0.001 or value == 0 else f"{value:.2e}"
    return str(value)


@dataclass
class Section:
    title: str
    intro: str = ""
    parts: list[tuple[str, Any]] = field(default_factory=list)

    def paragraph(self, text: str) -> Section:
        self.parts.append(("p", text))
        return self

    def note(self, text: str) -> Section:
        self.parts.append(("note", text))
        return self

    def table(
        self, columns: Sequence[str], rows: Sequence[Sequence[object]], caption: str = ""
    ) -> Section:
        self.parts.append(("table", (list(columns), [list(r) for r in rows], caption)))
        return self

    def figure(self, fig: Any, caption: str = "") -> Section:
        """A ``plotly.graph_objects.Figure``."""
        self.parts.append(("figure", (fig, caption)))
        return self


@dataclass
class Page:
    title: str
    subtitle: str = ""
    footer: str = ""
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str, intro: str = "") -> Section:
        sec = Section(title, intro)
        self.sections.append(sec)
        return sec

    def render(self) -> str:
        """The page through the report templates (``report/templates/sections.html.j2``):
        the plan report's stylesheet and chart drawing, Plotly inlined once."""
        from straits.report.page import render

        figures: dict[str, Any] = {}
        sections = []
        for sec in self.sections:
            parts: list[tuple[str, Any]] = []
            for kind, part in sec.parts:
                if kind == "table":
                    columns, rows, caption = part
                    parts.append(
                        (
                            kind,
                            {
                                "columns": columns,
                                "caption": caption,
                                "rows": [
                                    [
                                        {
                                            "text": fmt(v),
                                            "numeric": isinstance(v, int | float)
                                            and not isinstance(v, bool),
                                        }
                                        for v in r
                                    ]
                                    for r in rows
                                ],
                            },
                        )
                    )
                elif kind == "figure":
                    fig_id = f"fig-{len(figures) + 1}"
                    figures[fig_id] = _figure_json(part[0])
                    parts.append((kind, {"id": fig_id, "caption": part[1]}))
                else:
                    parts.append((kind, part))
            sections.append({"title": sec.title, "intro": sec.intro, "parts": parts})
        return render(
            "sections.html.j2",
            title=self.title,
            subtitle=self.subtitle,
            footer=self.footer,
            sections=sections,
            figures=figures,
        )

    def write(self, path: Path) -> None:
        from straits.fileio import write_output

        write_output(path, self.render())


def _figure_json(fig: Any) -> dict[str, Any]:
    """A Plotly figure (graph object or dict) as plain JSON data."""
    if isinstance(fig, dict):
        return fig
    import json

    import plotly.io as pio

    data: dict[str, Any] = json.loads(pio.to_json(fig, validate=False))
    data.setdefault("layout", {}).pop("template", None)  # the page's own style, not Plotly's
    return data
