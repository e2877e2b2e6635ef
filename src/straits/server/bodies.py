"""JSON request bodies: parsed by Straits' own validators (so errors read exactly as the CLI's),
documented in the OpenAPI spec from the same pydantic models."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from pydantic import TypeAdapter

from straits.errors import InputError, RequestError

#: JSON schemas of the documented bodies' models, merged into the spec's components
COMPONENTS: dict[str, Any] = {}


def schema_of(tp: Any) -> dict[str, Any]:
    """The JSON schema of ``tp`` with its definitions moved to the OpenAPI components."""
    schema = TypeAdapter(tp).json_schema(ref_template="#/components/schemas/{model}")
    COMPONENTS.update(schema.pop("$defs", {}))
    return schema


def documented(tp: Any, description: str, *, yaml: bool = False) -> dict[str, Any]:
    """``openapi_extra`` for a route whose JSON (and, with ``yaml``, YAML) body is ``tp``."""
    schema = schema_of(tp)
    content = {"application/json": {"schema": schema}}
    if yaml:
        content["application/yaml"] = {"schema": schema}
    return {"requestBody": {"required": True, "description": description, "content": content}}


async def json_body(request: Request, label: str) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise RequestError("the request body is empty", source=label, expected="JSON")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(f"not valid JSON: {exc}", source=label) from None


def error_json(exc: InputError) -> dict[str, Any]:
    return {"error": str(exc), "detail": exc.detail, "path": exc.path,
            "expected": exc.expected}


YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


async def document_body(request: Request, label: str) -> Any:
    """A JSON body, or YAML when the Content-Type says so (``application/yaml``). A body
    without a JSON Content-Type that is not JSON is read as YAML too (``curl --data-binary
    @scenario.yaml`` sends a form type)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        return await json_body(request, label)
    raw = await request.body()
    if not raw.strip():
        raise RequestError("the request body is empty", source=label, expected="JSON or YAML")
    if kind not in YAML_TYPES:
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("not UTF-8 text", source=label, expected="JSON or YAML") from None
    from straits.loading import parse_document

    try:
        return parse_document(text, source=label, error=RequestError)
    except RecursionError:  # PyYAML's composer recurses once per level
        raise RequestError("nested too deeply to read", source=label,
                           expected="a document of ordinary depth") from None
