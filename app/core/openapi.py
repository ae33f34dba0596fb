"""The OpenAPI document names the problem+json answers of every operation.

FastAPI documents only the success answer (and a 422 in its own JSON shape). Here the
generated document is post-processed once, walking the app's routes: each operation gets
the `application/problem+json` answers it can give, derived from what it is:

- every operation behind an API key: 401, 429 (and 403 unless every role may call it),
  503 (the database unreachable or out of connections);
- a path id (`/v1/channels/{ref}`), or a key bound to a channel/location naming one
  in the query or body: 404;
- parameters or a body: 422 (validation_error, one `errors[]` entry per bad field);
- a body: 400 invalid_json, 413 payload_too_large, 415 unsupported_media_type;
- POST: 409 idempotency_key_in_use and 422 idempotency_key_reused (Idempotency-Key);
- writes: 409 (conflicts with existing data, insufficient stock…);
- PATCH, and writes on a path id that read If-Match: 412 version_conflict.

An answer a route declares itself (`responses=`) keeps its description; its content
becomes problem+json too.
"""
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from app.core.errors import PROBLEM_JSON
from app.core.schemas import Problem

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}}

DESCRIPTIONS = {
    400: "`invalid_json`: the body is not valid JSON.",
    401: "`unauthenticated`: no API key, or an unknown or revoked one (`Authorization: Bearer <secret>`).",
    403: "`forbidden`: the key's role may not do this.",
    404: "`not_found`: no such resource, or one outside the key's channel/location binding.",
    409: "A conflict with existing data or state: a code or SKU taken (`conflict`, `duplicate_…`), "
         "`insufficient_stock`, a state that does not allow the change.",
    412: "`version_conflict`: If-Match (or `version` in the body) names another version than the current one.",
    413: "`payload_too_large`: the body is over the size limit.",
    415: "`unsupported_media_type`: the body is not JSON.",
    422: "`validation_error`: one `errors[]` entry per bad field (`lines[2].sku`), unknown fields included.",
    429: "`rate_limited`: over the key's limit; retry after `Retry-After` seconds.",
    503: "`service_unavailable`: the database is unreachable or out of connections; retry after `Retry-After`.",
}
IDEMPOTENCY_409 = " With Idempotency-Key: `idempotency_key_in_use` while the first request is still running."
IDEMPOTENCY_422 = " With Idempotency-Key: `idempotency_key_reused` for another request under the same key."
HEADERS = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    429: RETRY_AFTER,
    503: RETRY_AFTER,
}

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
# Body or query fields that name a channel, location or SKU: a bound key naming another one gets 404.
REFERENCES = {"channel", "location", "sku", "skus", "gtin", "from", "to"}


def _require_names(route: Any) -> list[str]:
    """Names of the role dependencies (`require(...)` from app.auth.principal) of a route."""
    names: list[str] = []
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        name = getattr(dep.call, "__name__", "")
        if name.startswith("require_"):
            names.append(name)
        stack.extend(dep.dependencies)
    return names


def _roles(name: str) -> set[str]:
    return set(name.removeprefix("require_").split("_"))


def _body_fields(schema: dict, op: dict) -> set[str]:
    content = op.get("requestBody", {}).get("content", {})
    body = (content.get("application/json") or {}).get("schema") or {}
    if body.get("type") == "array":
        body = body.get("items") or {}
    for part in body.get("anyOf", []):  # an optional body: {$ref} | null
        if "$ref" in part:
            body = part
    ref = body.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        body = schema.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[1], {})
    return set(body.get("properties", {}))


def problem_statuses(route: Any, method: str, op: dict, schema: dict) -> set[int]:
    """`route`: an APIRoute (or FastAPI's RouteContext of one)."""
    from app.auth.principal import ROLES

    statuses: set[int] = set()
    requires = _require_names(route)
    authenticated = bool(requires) or route.path_format.startswith("/v1/")
    params = op.get("parameters", [])
    has_path_id = any(p.get("in") == "path" for p in params)
    has_body = "requestBody" in op
    if authenticated:
        statuses |= {401, 429, 503}
        roles = set.intersection(*(_roles(n) for n in requires)) if requires else set(ROLES)
        if not set(ROLES) <= roles:
            statuses.add(403)
        query = {p["name"] for p in params if p.get("in") == "query"}
        bound_keys_call = bool(roles - {"admin"})
        if has_path_id or (bound_keys_call and (query | _body_fields(schema, op)) & REFERENCES):
            statuses.add(404)
    elif any(code.isdigit() and int(code) == 503 for code in op.get("responses", {})):
        statuses.add(503)
    if params or has_body:
        statuses.add(422)
    if has_body:
        statuses |= {400, 413, 415}
    if method in WRITES:
        statuses.add(409)
        if method == "POST":
            statuses.add(422)
    if method == "PATCH" or (method in WRITES and has_path_id and route.dependant.request_param_name):
        statuses.add(412)
    if method == "DELETE" and not route.dependant.request_param_name and 409 in statuses:
        # a DELETE that reads no If-Match and sends no body: releasing, revoking (no conflict to report)
        statuses.discard(409)
    return statuses


def _problem_response(status: int, method: str, existing: dict | None) -> dict:
    description = DESCRIPTIONS.get(status, "An error.")
    if status == 409 and method == "POST":
        description += IDEMPOTENCY_409
    if status == 422 and method == "POST":
        description += IDEMPOTENCY_422
    if existing and existing.get("description") and existing["description"] not in ("Validation Error",):
        description = existing["description"]
    out: dict[str, Any] = {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}
    headers = dict((existing or {}).get("headers") or {})
    headers.update(HEADERS.get(status, {}))
    if status == 409 and method == "POST":
        headers.update(RETRY_AFTER)
    if headers:
        out["headers"] = headers
    return out


def add_problem_responses(app: FastAPI, schema: dict) -> dict:
    """Declare the problem+json answers on every operation of `schema` (in place)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    paths = schema.get("paths", {})
    for route in iter_route_contexts(app.routes):  # routes of included routers too
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        path_item = paths.get(route.path_format)
        if path_item is None:
            continue
        for method in route.methods:
            op = path_item.get(method.lower())
            if op is None:
                continue
            responses = op.setdefault("responses", {})
            wanted = problem_statuses(route, method, op, schema)
            wanted |= {int(c) for c in responses if c.isdigit() and int(c) >= 400}
            for status in sorted(wanted):
                responses[str(status)] = _problem_response(status, method, responses.get(str(status)))
            op["responses"] = dict(sorted(responses.items()))
    # FastAPI's own 422 shape is never sent: drop it (and its item) when nothing refers to it any more
    if "#/components/schemas/HTTPValidationError'" not in str(paths):
        components.pop("HTTPValidationError", None)
        if "#/components/schemas/ValidationError'" not in str(components):
            components.pop("ValidationError", None)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` (and /openapi.json) return the document with the problem answers."""
    generate = app.openapi  # FastAPI's: cached, rebuilt when routes are added
    done: list[dict] = []

    def openapi() -> dict:
        schema = generate()
        if not done or done[0] is not schema:
            add_problem_responses(app, schema)
            done[:] = [schema]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
