"""Why an option lost: a reason code on every rejection, with the words rendered at the edge.

Codes are what programs group, count and test on; the display text is made from a code (and,
for a rule, the rule's own title) only where a person reads it: the plan JSON's ``lost`` and
``summary`` (kept for the contract), the CLI's tables. Rule rejections are classed by what the
blocking rule reads (its Cedar condition, :func:`straits.rules.partition.roots`): a rule about
the data is a data-residency rule, one about the chip, the model weights or a shipment an
export control; a refusal to let the tenant buy chips is a procurement rejection.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class ReasonCode(StrEnum):
    """Why one option of a stage was not chosen."""

    EXPORT_CONTROL = "export-control"
    """a rule on chips, model weights or shipments blocks it (e.g. a BIS licence requirement)"""
    DATA_RESIDENCY = "data-residency"
    """a rule on the data it reads or the users it serves blocks it (PIPL, GDPR Chapter V)"""
    PROCUREMENT = "procurement"
    """the tenant may not buy the chips the option needs"""
    RULE = "rule"
    """another rule blocks it (a user pack's rule that reads neither data nor chips)"""
    LOCATION = "location"
    """the stage may run only in other countries"""
    MEMORY = "memory"
    """the model does not fit the pool's chips at any count it holds"""
    CAPACITY = "capacity"
    """the pool is too small, or busy with other stages when the stage could run"""
    WINDOW = "window"
    """the pool's availability windows (maintenance, later capacity) leave no room in time"""
    DEADLINE = "deadline"
    """even alone on an empty pool it would end after the workload's hard deadline"""
    BUDGET = "budget"
    """it would take the workload over its budget"""
    PREDECESSOR = "predecessor-unplaced"
    """a stage it depends on could not be placed"""
    COST = "cost"
    """lawful and free, but dearer than the chosen option"""
    TIME = "time"
    """lawful and free, but slower than the chosen option"""
    ENERGY = "energy"
    """lawful and free, but uses more energy than the chosen option"""
    CARBON = "carbon"
    """lawful and free, but emits more than the chosen option"""
    OBJECTIVE = "objective"
    """lawful and free, but worse on a weighted objective than the chosen option"""
    TIME_LIMIT = "time-limit"
    """not examined: the command's time limit ran out first"""
    NO_OPTIONS = "no-options"
    """the stage has no option at all: no site of the scenario has a pool, and the tenant may
    buy none (in ``lost_codes`` with a count of 0: there is no option to count)"""

    @property
    def label(self) -> str:
        """How people read the code (the plan JSON's ``lost`` keys for non-rule reasons)."""
        return _LABELS.get(self, self.value)

    @property
    def is_rule(self) -> bool:
        return self in RULE_CODES

    @property
    def lost_to_better(self) -> bool:
        """Lawful and free, beaten on the objective (not a constraint)."""
        return self in OBJECTIVE_CODES


_LABELS = {
    ReasonCode.PREDECESSOR: "predecessor unplaced",
    ReasonCode.TIME_LIMIT: "time limit",
    ReasonCode.NO_OPTIONS: "no options",
}
RULE_CODES = frozenset(
    {ReasonCode.EXPORT_CONTROL, ReasonCode.DATA_RESIDENCY, ReasonCode.PROCUREMENT, ReasonCode.RULE}
)
OBJECTIVE_CODES = frozenset(
    {ReasonCode.COST, ReasonCode.TIME, ReasonCode.ENERGY, ReasonCode.CARBON, ReasonCode.OBJECTIVE}
)


#: why a stage with no option at all has none (the summary people read)
NO_OPTIONS_TEXT = "no site of the scenario has a pool, and the tenant may buy none"


class Loss(NamedTuple):
    """Why an option lost before it was compared with the others: a code and the detail."""

    code: ReasonCode
    note: str
    group: str = ""
    """the label people read, where the code's own would mislead (``past 2100-12-31`` for a
    stage of a workload with no deadline, whose code is still ``deadline``)"""


class RankedOut(NamedTuple):
    """Options that lost without a record of their own: how many, on what, and why."""

    code: ReasonCode
    options: int
    note: str


#: records the Cedar context roots that make a rule a data-residency rule or an export control
DATA_ROOTS = frozenset({"data"})
EXPORT_ROOTS = frozenset({"chip", "weights", "ships_from", "quantity", "quantity_tpp"})


def rule_code(roots: frozenset[str], action: str) -> ReasonCode:
    """The code of a rejection by a rule that reads the context records ``roots``, asked about
    ``action``."""
    if action == "procure":
        return ReasonCode.PROCUREMENT
    if roots & DATA_ROOTS:
        return ReasonCode.DATA_RESIDENCY
    if roots & EXPORT_ROOTS:
        return ReasonCode.EXPORT_CONTROL
    return ReasonCode.RULE


def budget_usd(usd: float) -> str:
    """A budget as people read it: whole dollars, or cents when it has them (a budget of $0.01
    was written "budget $0")."""
    return f"${usd:,.2f}".removesuffix(".00")
