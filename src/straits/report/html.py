"""A small builder of offline HTML pages: a title, sections, paragraphs, tables, Plotly figures.

The page is one file that opens without a network: Plotly's JavaScript bundle is inlined once
(only when the page has a figure), styles are inline, every text is escaped. Figures get stable
ids (``fig-1``, ``fig-2``...) so the same content renders the same bytes. Typical use::

    page = Page("Market view", subtitle="shipped example, enacted rules")
    sec = page.section("Offshore demand", "Chip-hours rented abroad by home firms.")
    sec.figure(fig)                       # a plotly.graph_objects.Figure
    sec.table(["month", "MY"], [["2025-05", 1234]])
    html_text = page.render()             # or page.write(Path("report.html"))

Plotly is imported only when a figure is rendered.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2733;
background:#f6f7f9}
header{background:#14324d;color:#fff;padding:20px 32px}
header h1{margin:0;font-size:24px}header p{margin:6px 0 0;opacity:.85}
main{max-width:1200px;margin:0 auto;padding:16px 32px 48px}
section{background:#fff;border:1px solid #dde2e8;border-radius:6px;margin:18px 0;
padding:12px 20px}
section h2{font-size:18px;margin:8px 0}
p.note{color:#5b6875;font-size:13px}
table{border-collapse:collapse;font-size:13px;margin:8px 0;width:100%}
th,td{border-bottom:1px solid #e6e9ed;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#eef1f4;position:sticky;top:0}
caption{caption-side:top;text-align:left;font-weight:600;padding:4px 0}
.tablewrap{max-height:420px;overflow:auto}
footer{color:#5b6875;font-size:12px;text-align:center;padding:16px}
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


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

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[object]],
              caption: str = "") -> Section:
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
        figures = 0
        body: list[str] = []
        for sec in self.sections:
            body.append(f"<section><h2>{esc(sec.title)}</h2>")
            if sec.intro:
                body.append(f"<p>{esc(sec.intro)}</p>")
            for kind, part in sec.parts:
                if kind == "p":
                    body.append(f"<p>{esc(part)}</p>")
                elif kind == "note":
                    body.append(f'<p class="note">{esc(part)}</p>')
                elif kind == "table":
                    body.append(_table(*part))
                else:
                    figures += 1
                    body.append(_figure(part[0], part[1], f"fig-{figures}"))
            body.append("</section>")
        script = ""
        if figures:
            from plotly.offline import get_plotlyjs

            script = f'<script type="text/javascript">{get_plotlyjs()}</script>'
        sub = f"<p>{esc(self.subtitle)}</p>" if self.subtitle else ""
        foot = f"<footer>{esc(self.footer)}</footer>" if self.footer else ""
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{esc(self.title)}</title><style>{STYLE}</style>{script}</head><body>"
                f"<header><h1>{esc(self.title)}</h1>{sub}</header><main>{''.join(body)}</main>"
                f"{foot}</body></html>\n")

    def write(self, path: Path) -> None:
        from straits.fileio import write_atomically

        write_atomically(path, self.render())


def _table(columns: list[str], rows: list[list[object]], caption: str) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    cells = "".join("<tr>" + "".join(f"<td>{esc(fmt(v))}</td>" for v in r) + "</tr>"
                    for r in rows)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (f'<div class="tablewrap"><table>{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{cells}</tbody></table></div>")


def _figure(fig: Any, caption: str, div_id: str) -> str:
    import plotly.io as pio

    div = pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id,
                      config={"displaylogo": False, "responsive": True})
    cap = f'<p class="note">{esc(caption)}</p>' if caption else ""
    return f"<div>{div}{cap}</div>"
