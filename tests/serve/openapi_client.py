"""A client generated from the service's OpenAPI document at run time: the operation's request
body (JSON or multipart, file fields by `format: binary`), query and path parameters are read
from `/docs.json`, never written by hand, so a call through it works only if the schema tells
the truth about the endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.path}"


def operations(doc: dict[str, Any]) -> list[Operation]:
    return [
        Operation(path, method, spec)
        for path, item in doc["paths"].items()
        for method, spec in item.items()
        if method in ("get", "post", "put", "delete")
    ]


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow `$ref`s (and a single-entry allOf) to the schema they name."""
    while True:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = doc["components"]["schemas"][name]
        elif len(schema.get("allOf", ())) == 1:
            schema = schema["allOf"][0]
        else:
            return schema


def body_media(op: Operation) -> tuple[str | None, dict[str, Any]]:
    """(media type, schema) of the operation's first request body form, or (None, {})."""
    content = op.spec.get("requestBody", {}).get("content", {})
    for media, spec in content.items():
        return media, spec.get("schema", {})
    return None, {}


def is_file(doc: dict[str, Any], schema: dict[str, Any]) -> bool:
    return resolve(doc, schema).get("format") == "binary"


class SchemaClient:
    """Calls operations of `doc` by operationId or (method, path) with keyword values."""

    def __init__(self, http: httpx.Client, doc: dict[str, Any]) -> None:
        self.http, self.doc = http, doc
        self.ops = {op.spec.get("operationId", op.name): op for op in operations(doc)}

    def op(self, method: str, path: str) -> Operation:
        return next(o for o in self.ops.values() if (o.method, o.path) == (method, path))

    def request(
        self,
        op: Operation,
        values: dict[str, Any],
        headers: dict[str, str] | None = None,
        media: str | None = None,
    ) -> httpx.Response:
        path, query = op.path, {}
        kind, schema = body_media(op)
        kind = media or kind
        in_form = kind == "multipart/form-data" or kind == "application/json"
        body_props = resolve(self.doc, schema).get("properties", {}) if in_form else {}
        for param in op.spec.get("parameters", []):
            name = param["name"]
            if name not in values or name in body_props:  # a form field wins (documented)
                continue
            value = values.pop(name)
            if param["in"] == "path":
                path = path.replace("{" + name + "}", str(value))
            elif param["in"] == "query":
                query[name] = _text(value)
        kwargs: dict[str, Any] = {}
        if kind == "multipart/form-data":
            props = resolve(self.doc, schema).get("properties", {})
            files = {k: ("upload", v) for k, v in values.items() if is_file(self.doc, props[k])}
            data = {k: _text(v) for k, v in values.items() if k not in files}
            kwargs = {"files": files or None, "data": data or None}
        elif kind == "application/json":
            kwargs = {"json": values}
        elif kind is not None:  # a raw body (image/*, application/octet-stream)
            raw = next(iter(values.values()), b"")
            kwargs = {"content": raw, "headers": {"content-type": kind}}
        if headers:
            kwargs["headers"] = {**kwargs.get("headers", {}), **headers}
        return self.http.request(op.method.upper(), path, params=query or None, **kwargs)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
