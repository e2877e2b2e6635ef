"""Kept for importers of the old module: the search's progress types.

The optimizer now lives in :mod:`straits.plan.solvers` (the solvers and their time budget),
:mod:`straits.plan.search` (the whole-portfolio search and progress), :mod:`straits.plan.lns`
(neighbourhood search) and :mod:`straits.plan.solution` (solutions and extraction).
"""

from __future__ import annotations

from straits.plan.search import Progress, SearchState

__all__ = ["Progress", "SearchState"]
