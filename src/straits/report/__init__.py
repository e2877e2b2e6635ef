"""Self-contained HTML reports (no network): a generic page builder shared by every report."""

from straits.report.html import Page, Section

__all__ = ["Page", "Section"]
