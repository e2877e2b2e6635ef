"""The one module that talks to cedarpy.

Everything Cedar-specific (parsing, schema validation, evaluation, policy ids) is behind these
few functions so that the rest of Straits deals in rule ids and plain data.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import cedarpy

#: Cedar's evaluation errors name the policy: "error while evaluating policy `p1`: ..."
_POLICY_IN_ERROR = re.compile(r"policy `([^`]+)`")
#: the deepest brackets and the most operators one statement may hold before cedarpy sees it.
#: Its parser recurses: the process died of a stack overflow (SIGSEGV, no message; found by a
#: hostile input review) at 1,000 nested parentheses (400 parsed), 6,000 nested `if` (2,000
#: parsed), 20,000 chained `&&` or member accesses (10,000 and 12,000 parsed; cedarpy 4.x,
#: an 8 MiB stack). The shipped packs reach 4 and 48.
MAX_DEPTH = 64
MAX_OPERATORS = 2000
#: strings and comments, which hold brackets and operators that are not Cedar's
_NOT_CODE = re.compile(r'"(?:\\.|[^"\\])*"|//[^\n]*')
_OPERATOR = re.compile(r"&&|\|\||[-+*!.]|\bif\b")


class CedarSyntaxError(ValueError):
    """Cedar could not parse a policy or schema."""


@dataclass(frozen=True)
class ValidationProblem:
    policy_index: int | None
    message: str


def _shallow(text: str) -> None:
    """Refuse text nested deeper, or a statement with more operators, than cedarpy survives
    (:data:`MAX_DEPTH`, :data:`MAX_OPERATORS`); the caller names the file and statement."""
    code = _NOT_CODE.sub(lambda m: '""' if m.group().startswith('"') else "", text)
    depth, operators = 0, 0
    for piece in re.split(r"(;|[()\[\]{}])", code):
        if piece == ";":
            operators = 0
        elif piece and piece in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                raise CedarSyntaxError(
                    f"the policy nests more than {MAX_DEPTH} brackets deep: "
                    "name the parts in a country group or an attribute, or split the policy"
                )
        elif piece and piece in ")]}":
            depth -= 1
        else:
            operators += len(_OPERATOR.findall(piece))
            if operators > MAX_OPERATORS:
                raise CedarSyntaxError(
                    f"the policy nests too deeply (more than {MAX_OPERATORS} "
                    "operators in one statement): name the values in a country group, or "
                    "split the policy"
                )


def parse_est(text: str) -> dict[str, dict[str, Any]]:
    """Policy text -> {positional policy id: Cedar JSON (EST) of the policy, with annotations}."""
    _shallow(text)
    try:
        est = json.loads(cedarpy.policies_to_json_str(text))
    except ValueError as exc:
        raise CedarSyntaxError(str(exc)) from None
    except RecursionError:  # thousands of `||` terms: a traceback in every command loading it
        raise CedarSyntaxError(
            "the policy nests too deeply (an expression of some 500 chained operators or more): "
            "name the values in a country group, or split the policy"
        ) from None
    templates = est.get("templates") or {}
    if templates:
        raise CedarSyntaxError("policy templates (?principal / ?resource) are not supported")
    policies: dict[str, dict[str, Any]] = est.get("staticPolicies", {})
    return policies


def validate(text: str, schema_text: str) -> list[ValidationProblem]:
    """Type-check policies against the schema; positional ids are returned as indexes."""
    _shallow(text)
    _shallow(schema_text)
    try:
        result = cedarpy.validate_policies(text, schema_text)
    except ValueError as exc:
        raise CedarSyntaxError(str(exc)) from None
    problems = []
    for err in result.errors:
        pid = err.policy_id
        index = (
            int(pid[len("policy") :]) if pid.startswith("policy") and pid[6:].isdigit() else None
        )
        problems.append(ValidationProblem(index, err.error))
    return problems


def check_schema(schema_text: str) -> None:
    _shallow(schema_text)
    try:
        cedarpy.Schema.from_str(schema_text)
    except ValueError as exc:
        raise CedarSyntaxError(str(exc)) from None


class Evaluator:
    """A parsed policy set, entity graph and schema, reused across requests."""

    def __init__(
        self,
        policy_text: str,
        entities: list[dict[str, Any]],
        schema_text: str,
        *,
        est: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Policies from Cedar text (ids ``policy0``, ``policy1``... by position), or from their
        JSON form ``est`` (ids as its keys)."""
        _shallow(schema_text)
        if est is None:
            _shallow(policy_text)
        try:
            self._schema = cedarpy.Schema.from_str(schema_text)
            if est is not None:
                doc = {"staticPolicies": est, "templates": {}, "templateLinks": []}
                self._policies = cedarpy.PolicySet.from_json_str(json.dumps(doc))
            else:
                self._policies = cedarpy.PolicySet.from_str(policy_text)
            self._entities = cedarpy.Entities.from_json_str(json.dumps(entities), self._schema)
        except ValueError as exc:
            raise CedarSyntaxError(str(exc)) from None

    def applying(self, requests: list[dict[str, Any]]) -> list[tuple[set[str], set[str]]]:
        """For each request, the ids of the policies whose conditions hold and of those whose
        evaluation failed (an error makes a policy not apply; nothing is raised)."""
        results = cedarpy.is_authorized_batch(
            requests, self._policies, self._entities, schema=self._schema
        )
        out = []
        for res in results:
            failed = {
                m.group(1)
                for e in res.diagnostics.errors
                if (m := _POLICY_IN_ERROR.search(str(e))) is not None
            }
            out.append((set(res.diagnostics.reasons), failed))
        return out

    def satisfied(self, requests: list[dict[str, Any]]) -> list[list[int]]:
        """For each request, the positional indexes of the policies whose conditions hold.

        Raises ValueError with Cedar's message when a request does not match the schema.
        """
        results = cedarpy.is_authorized_batch(
            requests, self._policies, self._entities, schema=self._schema
        )
        out = []
        for res in results:
            errors = res.diagnostics.errors
            if errors:
                raise ValueError("; ".join(str(e) for e in errors))
            out.append(sorted(int(pid[len("policy") :]) for pid in res.diagnostics.reasons))
        return out


def entity(type_name: str, entity_id: str) -> dict[str, Any]:
    """A Cedar entity reference as it appears in a request's context."""
    return {"__entity": {"type": type_name, "id": entity_id}}


def extension(fn: str, arg: str) -> dict[str, Any]:
    """A Cedar extension value (``datetime``, ``decimal``) as it appears in a context."""
    return {"__extn": {"fn": fn, "arg": arg}}
