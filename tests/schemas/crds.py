"""Validate custom resources against their CRD's own OpenAPI v3 schema (shipped in crds/, each
file naming its source repository, path and commit).

The schema is checked the way ``kubectl apply`` (server-side field validation ``Strict``, the
default since Kubernetes 1.27) and the API server check it: types, enums, patterns, required
fields, and unknown fields rejected (every object schema with ``properties`` and no
``additionalProperties`` / ``x-kubernetes-preserve-unknown-fields`` is closed). CEL rules
(``x-kubernetes-validations``) are not evaluated: they compare an object with its previous
version (immutability) or are checked by the tests directly. Where the shipped schema cuts an
embedded core type (``x-straits-cut``), the value there is validated by kubernetes-validate
against the Kubernetes OpenAPI schema of that type, wrapped in a Job or Pod.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

#: what ``validate`` raises for a document its CRD's schema refuses
SchemaError = jsonschema.ValidationError

HERE = Path(__file__).resolve().parent / "crds"
K8S_VERSION = "1.31"
#: the object that carries each cut core type, for kubernetes-validate
WRAP = {
    "io.k8s.api.batch.v1.JobSpec": ("batch/v1", "Job", "spec"),
    "io.k8s.api.core.v1.PodSpec": ("v1", "Pod", "spec"),
}


def _convert(node: Any, path: tuple[str, ...], cuts: list[tuple[tuple[str, ...], str]]) -> Any:
    if isinstance(node, list):
        return [_convert(x, path, cuts) for x in node]
    if not isinstance(node, dict):
        return node
    if "x-straits-cut" in node:
        cuts.append((path, node["x-straits-cut"]))
        return {"type": "object"}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("format", "default"):
            continue
        if key == "properties":
            out[key] = {k: _convert(v, (*path, k), cuts) for k, v in value.items()}
        elif key == "items":
            out[key] = _convert(value, (*path, "*"), cuts)
        else:
            out[key] = _convert(value, path, cuts)
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
        and path != ("metadata",)
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd(kind: str) -> tuple[dict[str, Any], list[tuple[tuple[str, ...], str]], str]:
    """(JSON schema, cut paths, apiVersion) of the shipped CRD of ``kind``."""
    for path in HERE.glob("*.yaml"):
        doc = yaml.safe_load(path.read_text())
        if doc["spec"]["names"]["kind"] == kind:
            version = doc["spec"]["versions"][0]
            cuts: list[tuple[tuple[str, ...], str]] = []
            schema = _convert(version["schema"]["openAPIV3Schema"], (), cuts)
            return schema, cuts, f"{doc['spec']['group']}/{version['name']}"
    raise KeyError(f"no shipped CRD for {kind}")


def _at(doc: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if not path:
        yield doc
        return
    head, rest = path[0], path[1:]
    if head == "*":
        for item in doc if isinstance(doc, list) else ():
            yield from _at(item, rest)
    elif isinstance(doc, dict) and head in doc:
        yield from _at(doc[head], rest)


def validate(doc: dict[str, Any]) -> None:
    """Raise (jsonschema.ValidationError, kubernetes_validate.ValidationError) unless ``doc``
    is valid for its kind's CRD."""
    import kubernetes_validate as kv

    schema, cuts, api_version = crd(doc["kind"])
    if doc.get("apiVersion") != api_version:
        raise jsonschema.ValidationError(
            f"apiVersion {doc.get('apiVersion')!r}: the shipped CRD serves {api_version}"
        )
    jsonschema.validate(doc, schema)
    for path, type_name in cuts:
        api, kind, field = WRAP[type_name]
        for value in _at(doc, path):
            kv.validate(
                {"apiVersion": api, "kind": kind, "metadata": {"name": "cut"}, field: value},
                K8S_VERSION,
                strict=True,
            )
