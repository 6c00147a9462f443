"""/docs.json: BentoML's generated OpenAPI document, made true to what the service answers.

BentoML 1.4 generates the document from the APIs' signatures, which puts every parameter's
bounds in it, but it declares 200, 400, 404 and 500 for every operation, leaves out the
routes of the mounted page app, and writes OpenAPI 3.1 / JSON-schema forms (`type: file`,
numeric `exclusiveMinimum`, `type: null`, `$ref` with siblings) into a document that says
`openapi: 3.0.2`. This module is the one place that corrects it:

* every schema is rewritten into its OpenAPI 3.0 form (`_to_30`);
* each operation lists the statuses it can answer (`ANSWERS`), every error with the shared
  `ErrorBody` (artflow.serve.envelope), each success with its real media type and schema;
* the page app's routes (`ROUTES`) and /classify's other request forms (the raw image body,
  the parameters in the query string) are declared;
* admin operations declare the bearer token.

The result validates against OpenAPI 3.0 (tests/serve/test_contract.py checks that, and that
the service's answers to generated requests match it). `SchemaDocument` serves it at
/docs.json in front of BentoML's own route; /schema.json (BentoML's client reads it) is
left as BentoML writes it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from typing import Any

from artflow.serve.envelope import CODES

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

REF = "#/components/schemas/{}"
IMAGE = {"type": "string", "format": "binary"}
UPLOAD = (400, 413, 415, 422)  # what the request guard and the decoder refuse
ADMIN = (400, 401, 403, 413, 415, 422, 429, 503)
STORE = (503,)

# operation -> (success status, success content, error statuses)
ANSWERS: dict[tuple[str, str], tuple[int, dict[str, Any], tuple[int, ...]]] = {
    ("post", "/classify"): (
        200,
        {"application/json": "ClassifyAnswer"},
        (*UPLOAD, 404, 429, 503, 504),
    ),
    ("post", "/stylize"): (
        200,
        {"image/png": IMAGE, "image/jpeg": IMAGE},
        (*UPLOAD, 409, 429, 503, 504),
    ),
    ("post", "/gatys/jobs"): (202, {"application/json": "JobSubmitted"}, (*UPLOAD, 409, 429, 503)),
    ("post", "/monet"): (200, {"image/png": IMAGE, "image/jpeg": IMAGE}, (*UPLOAD, 503, 504)),
    ("post", "/feedback"): (
        200,
        {"application/json": "FeedbackStored"},
        (400, 404, 409, 413, 415, 422, 503),
    ),
    ("post", "/ratings"): (
        200,
        {"application/json": "RatingStored"},
        (400, 404, 409, 413, 415, 422, 503),
    ),
    ("post", "/admin/weight"): (200, {"application/json": "Object"}, ADMIN),
    ("post", "/admin/reload"): (200, {"application/json": "Object"}, ADMIN),
    ("post", "/admin/rollback"): (200, {"application/json": "Object"}, (*ADMIN, 409)),
    ("post", "/admin/status"): (200, {"application/json": "Object"}, ADMIN),
    ("get", "/readyz"): (200, {"text/plain": {"type": "string"}}, (503,)),
    ("get", "/livez"): (200, {"text/plain": {"type": "string"}}, ()),
    ("get", "/healthz"): (200, {"text/plain": {"type": "string"}}, ()),
    ("get", "/metrics"): (200, {"text/plain": {"type": "string"}}, ()),
}

JOB_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"}
_JOB_PATH = [{"name": "job", "in": "path", "required": True, "schema": {"type": "string"}}]
_JOB_QUERY = [{"name": "job", "in": "query", "required": True, "schema": {"type": "string"}}]
# The mounted page app's routes (artflow.serve.web): (method, path) -> operation
ROUTES: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/status"): {
        "description": "Health for anyone; the full view with the admin token.",
        "answers": (200, {"application/json": "Object"}, (401, 403, 429, 503)),
        "secured": "optional",
    },
    ("get", "/gallery"): {
        "description": "One style image per artist: [{artist, url}].",
        "answers": (200, {"application/json": "GalleryList"}, ()),
    },
    ("get", "/gallery/{name}"): {
        "description": "A gallery image (JPEG).",
        "parameters": [
            {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        "answers": (200, {"image/jpeg": IMAGE}, (404,)),
    },
    ("get", "/gatys/jobs/{job}"): {
        "description": "The job's state, step, steps and losses, read from the serving store.",
        "parameters": _JOB_PATH,
        "answers": (200, {"application/json": "Job"}, (404, 503)),
    },
    ("get", "/gatys/jobs/{job}/result"): {
        "description": "The PNG once the job is done (409 before).",
        "parameters": _JOB_PATH,
        "answers": (200, {"image/png": IMAGE}, (404, 409, 503)),
    },
    ("post", "/gatys/jobs/{job}/cancel"): {
        "description": "Stop the job at its next step, whichever pod runs it.",
        "parameters": _JOB_PATH,
        "answers": (200, {"application/json": "Job"}, (404, 413, 503)),
    },
    ("get", "/gatys/progress"): {
        "description": "Progress of a synchronous /stylize Gatys run named by `job`.",
        "parameters": _JOB_QUERY,
        "answers": (200, {"application/json": "Job"}, (404, 503)),
    },
    ("post", "/gatys/cancel"): {
        "description": "Stop the synchronous Gatys run named by `job` at its next step.",
        "parameters": _JOB_QUERY,
        "answers": (200, {"application/json": "Job"}, (404, 413, 503)),
    },
}

_EXTRA_SCHEMAS = {
    "Object": {"type": "object", "additionalProperties": True},
    "FeedbackStored": {
        "type": "object",
        "required": ["stored", "prediction_id"],
        "properties": {
            "stored": {"type": "boolean"},
            "prediction_id": {"type": "string"},
            "correct": {"type": "boolean", "nullable": True},
        },
    },
    "RatingStored": {
        "type": "object",
        "required": ["stored", "answer_id", "rating"],
        "properties": {
            "stored": {"type": "boolean"},
            "answer_id": {"type": "string"},
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "endpoint": {"type": "string"},
            "model_version": {"type": "string"},
        },
    },
    "GalleryList": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["artist", "url"],
            "properties": {"artist": {"type": "string"}, "url": {"type": "string"}},
        },
    },
    "Job": {
        "type": "object",
        "required": ["job", "state"],
        "additionalProperties": True,
        "properties": {
            "job": {"type": "string"},
            "state": {
                "type": "string",
                "enum": ["queued", "running", "done", "cancelled", "failed", "lost"],
            },
            "step": {"type": "integer"},
            "steps": {"type": "integer"},
        },
    },
}
_BENTOML_ERRORS = ("InvalidArgument", "NotFound", "InternalServerError", "TaskStatusResponse")


def document(spec: dict[str, Any]) -> dict[str, Any]:
    """BentoML's OpenAPI dict -> the service's true OpenAPI 3.0 document."""
    from artflow.serve.schemas import component_schemas

    doc = json.loads(json.dumps(spec))  # string keys, and a copy to rewrite
    doc["info"] = {
        "title": "artflow",
        "version": doc.get("info", {}).get("version", "dev"),
        "description": "Which painter made a painting, style transfer and Monet translation "
        "(docs/serving.md). Every error answer is an ErrorBody.",
    }
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in _BENTOML_ERRORS:
        schemas.pop(name, None)
    schemas.update(component_schemas())
    schemas.update(copy.deepcopy(_EXTRA_SCHEMAS))
    schemas.pop("ClassifyAnswerIODescriptor", None)
    doc["components"]["securitySchemes"] = {
        "adminToken": {"type": "http", "scheme": "bearer", "description": "ARTFLOW_ADMIN_TOKEN"}
    }
    for path, item in doc["paths"].items():
        for method, op in item.items():
            _fix_operation(method, path, op)
    for (method, path), route in ROUTES.items():
        doc["paths"].setdefault(path, {})[method] = _route(route)
    _raw_classify(doc)
    return _to_30(doc)


def _responses(answers: tuple[int, dict[str, Any], tuple[int, ...]]) -> dict[str, Any]:
    status, content, errors = answers
    ok = {
        media: {"schema": {"$ref": REF.format(s)} if isinstance(s, str) else s}
        for media, s in content.items()
    }
    out: dict[str, Any] = {str(status): {"description": "success", "content": ok}}
    error = {"application/json": {"schema": {"$ref": REF.format("ErrorBody")}}}
    for code in sorted(set(errors)):
        out[str(code)] = {"description": CODES.get(code, "error"), "content": error}
    return out


def _fix_operation(method: str, path: str, op: dict[str, Any]) -> None:
    answers = ANSWERS.get((method, path))
    if answers is not None:
        op["responses"] = _responses(answers)
    if path.startswith("/admin/"):
        op["security"] = [{"adminToken": []}]
    if path == "/classify":
        op["responses"]["200"]["headers"] = {
            "X-Artflow-Variant": {"schema": {"type": "string"}, "description": "who answered"}
        }
    if path in ("/stylize", "/monet"):
        op["responses"]["200"]["headers"] = {
            "X-Artflow-Answer-Id": {
                "schema": {"type": "string"},
                "description": "the answer's id, for POST /ratings",
            }
        }


def _route(route: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "description": route["description"],
        "tags": ["Page app routes"],
        "responses": _responses(route["answers"]),
    }
    if "parameters" in route:
        op["parameters"] = copy.deepcopy(route["parameters"])
    if "body" in route:
        op["requestBody"] = {
            "required": True,
            "content": {m: {"schema": copy.deepcopy(s)} for m, s in route["body"].items()},
        }
    if route.get("secured") == "optional":
        op["security"] = [{}, {"adminToken": []}]
    return op


def _raw_classify(doc: dict[str, Any]) -> None:
    """/classify also takes the image itself as the body, its parameters in the query string
    (artflow.serve.guard re-encodes both as the form)."""
    op = doc["paths"]["/classify"]["post"]
    content = op["requestBody"]["content"]
    for media in ("image/*", "application/octet-stream"):
        content[media] = {"schema": dict(IMAGE)}
    op["requestBody"]["required"] = True
    form = doc["components"]["schemas"]["classify__Input"]["properties"]
    op["parameters"] = [
        {"name": name, "in": "query", "required": False, "schema": copy.deepcopy(form[name])}
        for name in ("top_k", "family", "explain", "neighbours")
    ]


def _to_30(node: Any) -> Any:
    """JSON-schema / OpenAPI 3.1 forms -> OpenAPI 3.0 ones, recursively."""
    if isinstance(node, list):
        return [_to_30(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _to_30(v) for k, v in node.items()}
    if node.get("type") == "file":  # BentoML's file fields
        node["type"] = "string"
        node["format"] = "binary"
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = node.get(bound)
        if isinstance(value, int | float) and not isinstance(value, bool):
            node[plain], node[bound] = value, True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        node.pop("anyOf")
        if len(rest) == 1:
            node = {**rest[0], **node}
        else:
            node["anyOf"] = rest
        node["nullable"] = True
    if "$ref" in node and len(node) > 1:
        ref = node.pop("$ref")
        node = {"allOf": [{"$ref": ref}], **node}
    if node.get("default", 0) is None and not node.get("nullable"):
        node["nullable"] = True
    node.pop("examples", None)
    return node


class SchemaDocument:
    """GET /docs.json: the corrected document, built once from `spec()` (BentoML's)."""

    def __init__(self, app: Any, spec: Callable[[], dict[str, Any]]) -> None:
        self.app, self.spec = app, spec
        self._body: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/docs.json" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        if self._body is None:
            self._body = json.dumps(document(self.spec())).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self._body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self._body, "more_body": False})
