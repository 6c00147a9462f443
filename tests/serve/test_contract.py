"""The schema tells the truth: /docs.json is valid OpenAPI 3.0, and requests generated from it,
valid and invalid, get only the status codes it documents for the operation, with bodies that
match the documented schema, and never a 5xx.

The generator is hand-written and schema-driven (tests/serve/openapi_client.py builds each
request from the document): for every operation a valid baseline, then one field at a time
each boundary and a middle value (valid), and each way to break it: below the minimum, above
the maximum, the wrong type, outside the enum, too long, a file that is not an image, a
missing required field, the wrong content type. Admin operations are sent without, with a
wrong and with the right token; only harmless ones run with the right token (a rollback with
it would move the champion other tests rely on).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.serve import images
from tests.serve.conftest import ADMIN_TOKEN
from tests.serve.openapi_client import Operation, SchemaClient, body_media, operations, resolve

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WRONG = {"Authorization": "Bearer not-the-token"}
PNG = images.png(3, w=40, h=40)
BAD_FILES = {"text": b"not an image", "truncated": PNG[:50], "ico": images.ico()}
# What the right token may do here: not a rollback, not a reload racing other tests' aliases.
SAFE_WITH_TOKEN = {"/admin/status", "/admin/weight", "/status"}
# Fields whose valid range costs seconds per value: few values, small work.
GATYS = {"method": "gatys", "size": 32}
MIXES = 8
# Valid values that would cost seconds each (a 1024 px CycleGAN pass, building ResNet50
# features for Gatys): the cheap ones of the range; those paths have their own tests.
CHEAP = {
    ("/monet", "size"): [32, 48],
    ("/stylize", "size"): [32, 1024],  # fast style never upscales: 1024 costs the upload's size
    ("/stylize", "backbone"): ["vgg19"],
    ("/gatys/jobs", "steps"): [1, 2],  # a job at the maximum: tests/serve/test_gatys_service.py
    ("/gatys/jobs", "backbone"): ["vgg19"],
}


def examples(schema: dict[str, Any], name: str = "", path: str = "") -> list[Any]:
    """Valid values: each enum member, the bounds and a middle value, both booleans."""
    if (path, name) in CHEAP:
        return CHEAP[(path, name)]
    if "enum" in schema:
        return list(schema["enum"])
    kind = schema.get("type")
    if kind == "boolean":
        return [True, False]
    if kind in ("integer", "number"):
        low = schema.get("minimum", 0)
        high = schema.get("maximum", low + 10)
        if schema.get("exclusiveMinimum"):
            low = low + (1 if kind == "integer" else 0.5)
        values = [low, high, (low + high) // 2 if kind == "integer" else (low + high) / 2]
        return sorted(set(values))
    if kind == "string":
        return ["abcdefgh12"[: schema.get("maxLength", 10)]]
    return []


def breakers(schema: dict[str, Any]) -> list[Any]:
    """Invalid values of one field."""
    kind = schema.get("type")
    out: list[Any] = []
    if "enum" in schema:
        out.append("not-a-member")
    if kind in ("integer", "number"):
        out.append("abc")
        if "minimum" in schema:
            out.append(schema["minimum"] - (0 if schema.get("exclusiveMinimum") else 1))
        if "maximum" in schema:
            out.append(schema["maximum"] + 1)
        if kind == "integer":
            out.append(1.5)
        out.append(10**12)
    if kind == "boolean":
        out.append("maybe")
    if kind == "string" and "maxLength" in schema:
        out.append("x" * (schema["maxLength"] + 1))
    return out


def is_file(schema: dict[str, Any]) -> bool:
    return schema.get("format") == "binary"


def fields(doc: dict, op: Operation) -> tuple[dict[str, dict], set[str]]:
    """Body properties and query/path parameters -> (name -> schema, required names)."""
    _, schema = body_media(op)
    schema = resolve(doc, schema)
    props = {k: resolve(doc, v) for k, v in schema.get("properties", {}).items()}
    required = set(schema.get("required", []))
    for param in op.spec.get("parameters", []):
        if param["in"] in ("query", "path") and param["name"] not in props:
            props[param["name"]] = resolve(doc, param["schema"])
            if param.get("required"):
                required.add(param["name"])
    return props, required


def baseline(op: Operation, props: dict, required: set[str]) -> dict[str, Any]:
    base = {}
    for name in required:
        schema = props[name]
        if is_file(schema):
            base[name] = PNG
        elif name == "job" and op.path.startswith("/gatys"):
            base[name] = "no-such-job-0000"
        elif name == "prediction_id":
            base[name] = "no-such-prediction"
        elif name == "answer_id":
            base[name] = "0" * 32  # well-formed, never answered: 404
        elif name == "name":
            base[name] = "no-such-file.jpg"
        else:
            base[name] = (examples(schema) or ["x"])[0]
    if op.path == "/stylize":
        base["steps"] = 2  # cheap, for the Gatys cases
    if op.path == "/gatys/jobs":
        base.update(steps=2, size=32)
    return base


def cases(doc: dict, op: Operation) -> Iterator[tuple[str, dict, dict, str | None]]:
    """(label, values, headers, media override) for one operation."""
    props, required = fields(doc, op)
    base = baseline(op, props, required)
    admin = op.path.startswith("/admin") or op.path == "/status"
    tokens = [("no token", {}), ("wrong token", WRONG)] if admin else [("", {})]
    if admin and op.path in SAFE_WITH_TOKEN:
        tokens.append(("token", AUTH))
    for who, headers in tokens:
        yield f"baseline {who}", dict(base), headers, None
    headers = AUTH if admin and op.path in SAFE_WITH_TOKEN else (WRONG if admin else {})
    for name, schema in props.items():
        if is_file(schema):
            for label, data in BAD_FILES.items():
                yield f"{name}={label}", {**base, name: data}, headers, None
            continue
        values = examples(schema, name, op.path)
        if op.path == "/stylize" and name == "steps":
            values = [1, 3]  # the bound itself is a separate, cheap-size case
        for value in values:
            extra = GATYS if op.path == "/stylize" and name in ("backbone", "job") else {}
            yield f"{name}={value!r}", {**base, **extra, name: value}, headers, None
        for value in breakers(schema):
            yield f"{name}={value!r} (invalid)", {**base, name: value}, headers, None
    for name in required:
        rest = {k: v for k, v in base.items() if k != name}
        yield f"without {name}", rest, headers, None
    yield from mixes(op, props, base, headers)
    kind, _ = body_media(op)
    if kind is not None:
        yield "text/plain body", {"x": b"hello"}, headers, "text/plain"
    if op.path == "/stylize":
        yield "gatys", {**base, **GATYS}, {}, None
    if op.path == "/classify":
        yield "raw body", {"image": PNG, "top_k": 2}, {}, "image/png"
        yield "raw body, bad top_k", {"image": PNG, "top_k": 0}, {}, "image/png"
        yield "explain", {**base, "explain": True, "neighbours": 2}, {}, None


def mixes(op: Operation, props: dict, base: dict, headers: dict) -> Iterator[tuple]:
    """MIXES requests per operation with every field drawn at once, valid or broken (seeded)."""
    rng = random.Random(f"{op.name}")
    for i in range(MIXES):
        values = dict(base)
        for name, schema in props.items():
            if is_file(schema):
                if rng.random() < 0.2:
                    values[name] = rng.choice(list(BAD_FILES.values()))
                continue
            pool = examples(schema, name, op.path)
            pool += breakers(schema) if rng.random() < 0.3 else []
            if pool and rng.random() < 0.6:
                values[name] = rng.choice(pool)
        if op.path == "/stylize" and values.get("method") == "gatys":
            steps = values.get("steps")
            values.update(size=32, steps=min(steps, 3) if isinstance(steps, int) else steps)
        if op.path == "/gatys/jobs":
            values.update(size=32, steps=2)
        yield f"mix {i}: {sorted(values)}", values, headers, None


def _json_validator(doc: dict, schema: dict):
    from openapi_schema_validator import OAS30Validator

    return OAS30Validator({**schema, "components": doc["components"]})


def check(doc: dict, op: Operation, response: httpx.Response) -> str | None:
    """None when the answer is documented for `op`; else what is wrong."""
    status = response.status_code
    if status >= 500:
        return f"{status} (a 5xx): {response.text[:200]}"
    documented = op.spec["responses"]
    spec = documented.get(str(status))
    if spec is None:
        return f"undocumented status {status}: {response.text[:200]}"
    got = response.headers.get("content-type", "").split(";")[0]
    content = spec.get("content", {})
    media = next(
        (m for m in content if m == got or (m.endswith("/*") and got.startswith(m[:-1]))), None
    )
    if media is None:
        return f"{status} as {got!r}, documented {sorted(content)}"
    if media == "application/json":
        errors = sorted(
            e.message
            for e in _json_validator(doc, content[media]["schema"]).iter_errors(response.json())
        )
        if errors:
            return f"{status} body does not match its schema: {errors[:2]}"
    return None


def test_docs_json_is_valid_openapi_of_its_declared_version(client) -> None:
    from openapi_spec_validator import validate
    from openapi_spec_validator.versions import consts, get_spec_version

    doc = client.get("/docs.json").json()
    assert doc["openapi"].startswith("3.0")
    assert get_spec_version(doc) == consts.OPENAPIV30
    validate(doc)
    paths = set(doc["paths"])
    assert {"/classify", "/stylize", "/monet", "/feedback", "/ratings", "/gatys/jobs"} <= paths
    assert "/status" in paths
    for op in operations(doc):
        for status, spec in op.spec["responses"].items():
            if int(status) >= 400:
                assert spec["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    steps = resolve(doc, doc["components"]["schemas"]["stylize__Input"])["properties"]["steps"]
    assert "maximum" in steps  # the bound is in the schema


def test_generated_requests_get_only_documented_answers(client, admin_headers) -> None:
    doc = client.get("/docs.json").json()
    schema_client = SchemaClient(client, doc)
    problems, seen, jobs, spent, slowest = [], Counter(), [], Counter(), Counter()
    started = time.monotonic()
    try:
        for op in operations(doc):
            for label, values, headers, media in cases(doc, op):
                t0 = time.monotonic()
                response = schema_client.request(op, values, headers=headers, media=media)
                spent[op.name] += time.monotonic() - t0
                slowest[f"{op.name} [{label[:60]}]"] = time.monotonic() - t0
                seen[(op.name, response.status_code)] += 1
                if response.status_code == 202:
                    jobs.append(response.json()["job"])
                problem = check(doc, op, response)
                if problem:
                    problems.append(f"{op.name} [{label}]: {problem}")
    finally:
        client.post("/admin/weight", json={"weight": 0.1}, headers=admin_headers)
        for job in jobs:  # stopped, so they leave the CPU to later tests
            client.post(f"/gatys/jobs/{job}/cancel")
    total = sum(seen.values())
    assert not problems, "\n".join(problems[:30])
    assert total >= 300, f"only {total} requests generated"
    statuses = {status for _, status in seen}
    assert {200, 401, 403, 404, 415, 422} <= statuses, sorted(statuses)
    assert client.get("/livez").status_code == 200
    print(f"{total} generated requests in {time.monotonic() - started:.1f} s: {sorted(statuses)}")
    print({name: round(t, 1) for name, t in spent.most_common(6)})
    print({name: round(t, 1) for name, t in slowest.most_common(12)})
