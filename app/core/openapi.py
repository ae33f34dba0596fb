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
- every PATCH, and every operation whose handler reads If-Match: 412 version_conflict.

An answer a route declares itself (`responses=`) keeps its description; its content
becomes problem+json too.

Beyond the status codes, each operation names the `code`s it can answer (`x-error-codes`, and
a "Codes:" line in each answer's description): the generic ones of the layers above, plus the
ones its handler can raise, found by reading the handler and what it calls (`app.core.error_codes`).

The document also declares the Bearer scheme (`bearerAuth`) on every operation behind an API
key, so "Authorize" in the docs makes "Try it out" work; the `Idempotency-Key` header on every
POST behind a key, and `If-Match` on every operation whose handler reads it.

`install_docs` serves Swagger UI at /docs and ReDoc at /redoc from files installed with the
project (the `fastapi-offline` package ships them): no CDN, so the docs work offline.
"""
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.staticfiles import StaticFiles

from app.core.error_codes import ErrorCodes, route_errors
from app.core.errors import DEFAULT_CODES, PROBLEM_JSON
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

SECURITY_SCHEME = "bearerAuth"
SECURITY_SCHEMES = {SECURITY_SCHEME: {
    "type": "http", "scheme": "bearer", "bearerFormat": "API key",
    "description": "An API key's secret (`uc_…`), as printed by `scripts/dev.sh` or `python -m app.cli "
                   "create-api-key`, or answered once by `POST /v1/api-keys`. Sent as `Authorization: Bearer <secret>`.",
}}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Makes a retry safe (any unique string, e.g. a UUID; 1–255 printable characters, kept "
                   "24 h per API key): the same key with the same request answers the first response again "
                   "(`Idempotent-Replayed: true`) without doing anything twice; another request under the same "
                   "key answers 422 `idempotency_key_reused`; while the first is still running, 409 "
                   "`idempotency_key_in_use`.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
IF_MATCH = {
    "name": "If-Match", "in": "header", "required": False,
    "description": "The `ETag` of the version you read, e.g. `\"3\"`: when the resource has changed since, the "
                   "request answers 412 `version_conflict` and changes nothing. Left out (or `*`): no check.",
    "schema": {"type": "string"},
}

# Codes every layer above the handlers can answer, by status (the handlers' own are found in their code).
GENERIC_CODES = {**{status: DEFAULT_CODES[status] for status in (401, 403, 404, 412, 413, 415, 422, 429, 503)},
                 400: "invalid_json"}


# --------------------------------------------------------------------------- statuses per operation

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


def needs_key(path: str) -> bool:
    """Everything under /v1/ needs an API key, except the webhooks that carry their own signature."""
    from app.auth.middleware import PUBLIC_PREFIXES

    return path.startswith("/v1/") and not path.startswith(PUBLIC_PREFIXES)


def problem_statuses(route: Any, method: str, op: dict, schema: dict, reads_if_match: bool) -> set[int]:
    """`route`: an APIRoute (or FastAPI's RouteContext of one). `reads_if_match`: whether its
    handler reads If-Match (`app.core.error_codes.route_errors`)."""
    from app.auth.principal import ROLES

    statuses: set[int] = set()
    requires = _require_names(route)
    authenticated = bool(requires) or needs_key(route.path_format)
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
    elif route.path_format.startswith("/v1/") or any(code.isdigit() and int(code) == 503 for code in op.get("responses", {})):
        statuses.add(503)  # a public /v1 operation (a webhook) still needs the database
    if params or has_body:
        statuses.add(422)
    if has_body:
        statuses |= {400, 413, 415}
    if method in WRITES:
        statuses.add(409)
        if method == "POST" and authenticated:
            statuses.add(422)
    if method == "PATCH" or reads_if_match:
        statuses.add(412)
    if method == "DELETE" and not route.dependant.request_param_name and 409 in statuses:
        # a DELETE that reads no If-Match and sends no body: releasing, revoking (no conflict to report)
        statuses.discard(409)
    return statuses


def error_codes(statuses: set[int], method: str, authenticated: bool, raised: set[tuple[int, str]]) -> dict[str, list[str]]:
    """The problem codes per documented status: the generic ones of the layers, and the handler's."""
    out: dict[int, set[str]] = {s: set() for s in statuses}
    for status in statuses:
        if status in GENERIC_CODES:
            out[status].add(GENERIC_CODES[status])
    if 409 in out and method in WRITES:
        out[409].add("conflict")  # a unique constraint hit by a concurrent write
    if method == "POST" and authenticated:
        out.setdefault(409, set()).add("idempotency_key_in_use")
        out.setdefault(422, set()).add("idempotency_key_reused")
    for status, code in raised:
        out.setdefault(status, set()).add(code)
    return {str(s): sorted(codes) for s, codes in sorted(out.items()) if codes}


def _problem_response(status: int, method: str, existing: dict | None, codes: list[str] | None = None,
                      authenticated: bool = True) -> dict:
    description = DESCRIPTIONS.get(status, "An error.")
    if status == 409 and method == "POST" and authenticated:
        description += IDEMPOTENCY_409
    if status == 422 and method == "POST" and authenticated:
        description += IDEMPOTENCY_422
    if existing and existing.get("description") and existing["description"] not in ("Validation Error",):
        description = existing["description"]
    if codes and codes != [GENERIC_CODES.get(status)]:  # the generic one alone is named above already
        description += "\n\nCodes: " + ", ".join(f"`{c}`" for c in codes) + "."
    out: dict[str, Any] = {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}
    headers = dict((existing or {}).get("headers") or {})
    headers.update(HEADERS.get(status, {}))
    if status == 409 and method == "POST" and authenticated:
        headers.update(RETRY_AFTER)
    if headers:
        out["headers"] = headers
    return out


def _add_header(op: dict, param: dict) -> None:
    params = op.setdefault("parameters", [])
    if not any(p.get("in") == "header" and p.get("name", "").lower() == param["name"].lower() for p in params):
        params.append(dict(param))


def add_problem_responses(app: FastAPI, schema: dict) -> dict:
    """Declare, on every operation of `schema` (in place): the problem+json answers and their
    codes, the Bearer scheme, and the Idempotency-Key / If-Match headers."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    analyzer = ErrorCodes()
    paths = schema.get("paths", {})
    for route in iter_route_contexts(app.routes):  # routes of included routers too
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        path_item = paths.get(route.path_format)
        if path_item is None:
            continue
        raised, reads_if_match = route_errors(route, analyzer)
        for method in route.methods:
            op = path_item.get(method.lower())
            if op is None:
                continue
            authenticated = bool(_require_names(route)) or needs_key(route.path_format)
            if authenticated:
                op["security"] = [{SECURITY_SCHEME: []}]
                if method == "POST":
                    _add_header(op, IDEMPOTENCY_KEY)
            if reads_if_match:
                _add_header(op, IF_MATCH)
            responses = op.setdefault("responses", {})
            wanted = problem_statuses(route, method, op, schema, reads_if_match)
            wanted |= {int(c) for c in responses if c.isdigit() and int(c) >= 400}
            wanted |= {status for status, _ in raised}
            codes = error_codes(wanted, method, authenticated, raised)
            for status in sorted(wanted):
                responses[str(status)] = _problem_response(status, method, responses.get(str(status)),
                                                           codes.get(str(status)), authenticated)
            op["responses"] = dict(sorted(responses.items()))
            op["x-error-codes"] = codes
    # FastAPI's own 422 shape is never sent: drop it (and its item) when nothing refers to it any more
    if "#/components/schemas/HTTPValidationError'" not in str(paths):
        schemas.pop("HTTPValidationError", None)
        if "#/components/schemas/ValidationError'" not in str(schemas):
            schemas.pop("ValidationError", None)
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


# --------------------------------------------------------------------------- /docs and /redoc, offline

DOCS_ASSETS = "/docs/assets"


def docs_assets_dir() -> Path:
    """Swagger UI 5 (swagger-ui-bundle.js, swagger-ui.css), ReDoc 2 (redoc.standalone.js) and a
    favicon, as the `fastapi-offline` package ships them."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


def install_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Swagger UI at `docs_url` and ReDoc at `redoc_url`, their files served from `DOCS_ASSETS`.
    Create the app with `docs_url=None, redoc_url=None` (FastAPI's own pages load a CDN)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=docs_assets_dir()), name="docs-assets")
    title = app.title

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request):
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"), title=f"{title} – Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            # the key given to "Authorize" survives a reload; each answer shows how long it took
            swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True},
        )

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request):
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"), title=f"{title} – ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png", with_google_fonts=False,
        )
