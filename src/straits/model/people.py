"""Counts of people in personal data, read conservatively where they are not given: what a
dataset (:class:`~straits.model.scenario.Dataset`) and a check request's data
(:class:`~straits.model.request.DataFacts`) hold."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from straits.model.types import People

#: individuals a personal dataset whose ``subjects`` is not given (absent or 0) is read as
#: holding: the highest threshold the CAC rules count (1,000,000 individuals: a security
#: assessment under the 2022 Measures Art. 4(2) and the 2024 Provisions Art. 7), so an unknown
#: count never reads as an exemption (atk81). Serving stages' unknown `user_subjects` likewise.
UNKNOWN_SUBJECTS = 1_000_000

_PERSONAL = ("personal", "sensitive_personal")
_PEOPLE: TypeAdapter[int] = TypeAdapter(People)


def _count(value: Any) -> int | None:
    """``value`` as the People type reads it (``50000.0`` and ``"50000"`` are 50,000), or None
    where it would be refused (validation then reports it against its field)."""
    try:
        return _PEOPLE.validate_python(value)
    except ValidationError:
        return None


def personal_counts(data: Any) -> tuple[Any, bool]:
    """(``data`` with its counts of people read conservatively, whether ``subjects`` was
    assumed).

    * A dataset classed ``personal`` or ``sensitive_personal`` whose ``subjects`` is not given
      (absent, null or 0) holds :data:`UNKNOWN_SUBJECTS` individuals: read as none, Chinese
      personal data of unstated size was exempt from every CAC mechanism and placed offshore.
    * One classed ``sensitive_personal`` with no count of sensitive individuals (absent or 0)
      counts every one of its ``subjects`` as sensitive. The CAC thresholds for sensitive
      personal information (10,000 individuals) are far below those for the rest: read as no
      sensitive individual, 50,000 individuals classed only ``sensitive_personal`` needed the
      standard contract where the law asks for a security assessment. A count given is kept.

    Counts are read as the field reads them: ``subjects: 50000.0`` skipped the second reading
    when only an ``int`` was looked at (atk81).
    """
    if not isinstance(data, dict):
        return data, False
    classes = data.get("classes")
    if not (isinstance(classes, (list, tuple)) and any(c in classes for c in _PERSONAL)):
        return data, False
    assumed = data.get("subjects") is None or _count(data["subjects"]) == 0
    if assumed:
        data = {**data, "subjects": UNKNOWN_SUBJECTS}
    subjects = _count(data["subjects"])
    given = data.get("sensitive_subjects")
    if "sensitive_personal" in classes and subjects and (given is None or _count(given) == 0):
        data = {**data, "sensitive_subjects": subjects}
    return data, assumed
