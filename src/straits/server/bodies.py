"""JSON request bodies: parsed by Straits' own validators (so errors read exactly as the CLI's),
documented in the OpenAPI spec from the same pydantic models."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool

from straits.errors import RequestError
from straits.loading import parse_json, refuse_surrogates

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
    """The body as strict JSON: finite numbers, each key once per object, nested at most
    64 deep (the size was capped by the server's body limit). Parsed in the thread pool: a
    body of 2 MiB of ``[{},{},...]`` takes the duplicate-key check over a second, and on the
    event loop it held every other request, any tenant's and ``/healthz``, that long (api29)."""
    raw = await request.body()
    if not raw.strip():
        raise RequestError("the request body is empty", source=label, expected="JSON")
    return await run_in_threadpool(_strict, raw, label)


def _strict(raw: bytes, label: str) -> Any:
    """``raw`` as strict JSON, no string holding a lone surrogate (``"\\ud800"``)."""
    data = parse_json(raw, source=label, error=RequestError)
    refuse_surrogates(data, raw, source=label, error=RequestError)
    return data


YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


async def document_body(request: Request, label: str) -> Any:
    """A JSON body, or YAML when the Content-Type says so (``application/yaml``). A body
    without a JSON Content-Type that is not JSON is read as YAML too (``curl --data-binary
    @scenario.yaml`` sends a form type). Either way within the limits of
    ``loading.parse_document`` (strict JSON; YAML depth, aliases, duplicate keys)."""
    kinds = request.headers.getlist("content-type")
    if len(kinds) > 1:  # read as the first: JSON to this server, YAML to a proxy that read both
        raise RequestError(
            f"Content-Type is given {len(kinds)} times",
            path="Content-Type",
            expected="one Content-Type header",
        )
    kind = (kinds[0] if kinds else "").split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        return await json_body(request, label)
    raw = await request.body()
    if not raw.strip():
        raise RequestError("the request body is empty", source=label, expected="JSON or YAML")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("not UTF-8 text", source=label, expected="JSON or YAML") from None
    from straits.loading import parse_document

    def parse() -> Any:
        data = parse_document(text, source=label, error=RequestError)
        refuse_surrogates(data, raw, source=label, error=RequestError)  # JSON read as YAML
        return data

    return await run_in_threadpool(parse)


async def document_and_text(request: Request, label: str) -> tuple[Any, str | None]:
    """:func:`document_body`'s document and the body's text (None if it is not UTF-8), so
    that a bad field's problem names its `line` as the CLI's error names a file's: the
    problem's `line` was null for every field error of a body."""
    data = await document_body(request, label)
    raw = await request.body()  # Starlette keeps the body it read: not read twice
    try:
        return data, raw.decode("utf-8")
    except UnicodeDecodeError:
        return data, None
