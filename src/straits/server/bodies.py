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


def documented(tp: Any, description: str) -> dict[str, Any]:
    """``openapi_extra`` for a route whose JSON body is ``tp``."""
    return {"requestBody": {"required": True, "description": description,
                            "content": {"application/json": {"schema": schema_of(tp)}}}}


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
