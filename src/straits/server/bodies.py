"""JSON request bodies: parsed by Straits' own validators (so errors read exactly as the CLI's),
documented in the OpenAPI spec from the same pydantic models."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import TypeAdapter

from straits.errors import RequestError
from straits.loading import parse_json

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
    """The body as strict JSON: finite numbers, each key once per object, nested at most
    64 deep (the size was capped by the server's body limit)."""
    raw = await request.body()
    if not raw.strip():
        raise RequestError("the request body is empty", source=label, expected="JSON")
    return parse_json(raw, source=label, error=RequestError)
