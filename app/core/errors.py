"""RFC 9457 problem+json errors. Every failure the API returns goes through here."""
import re
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

ERROR_BASE = "https://errors.unified-commerce.dev/errors/"
PROBLEM_JSON = "application/problem+json"

TITLES = {
    400: "Bad Request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    428: "Precondition Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}

DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "version_conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """Raise anywhere in a request to answer with a problem+json body."""

    def __init__(
        self,
        status: int,
        code: str | None = None,
        detail: str | None = None,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        self.status = status
        self.code = code or DEFAULT_CODES.get(status, "error")
        self.detail = detail or TITLES.get(status, "Error")
        self.errors = errors or []
        self.headers = headers or {}
        self.extra = extra
        super().__init__(f"{status} {self.code}: {self.detail}")


def not_found(what: str = "Resource", ident: str | None = None) -> ApiError:
    detail = f"{what} {ident!r} was not found." if ident else f"{what} was not found."
    return ApiError(404, "not_found", detail)


def validation_error(field: str, message: str, code: str = "validation_error", status: int = 422) -> ApiError:
    return ApiError(status, code, message, errors=[{"field": field, "message": message}])


def problem_body(status: int, code: str, detail: str, errors=None, **extra) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": ERROR_BASE + code,
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        "errors": errors or [],
    }
    body.update(extra)
    return body


def problem_response(status: int, code: str, detail: str, errors=None, headers=None, **extra) -> Response:
    return Response(
        orjson.dumps(problem_body(status, code, detail, errors, **extra)),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


# The names pydantic gives the members of a union (and validator wrappers) in an error's
# location: `str`, `constrained-int`, `list[union[constrained-str,constrained-int]]`,
# `function-after[_unique(), list[...]]`, `json-or-python[...]`… They name no field of the
# request, so the path leaves them out.
_SCHEMA_TAG = re.compile(
    r"^(constrained-)?(str|int|float|bool|bytes|decimal|complex|date|datetime|time|timedelta|uuid|none|any|"
    r"dict|list|set|frozenset|tuple|generator|literal|enum|url|multi-host-url|json|is-instance|is-subclass|"
    r"callable|model|dataclass|typed-dict|union|tagged-union|chain|lax-or-strict|json-or-python|nullable|"
    r"default|definition-ref|function-(before|after|wrap|plain))(\[.*\])?$", re.S)


_NO_VALUE = object()


def field_path(loc: tuple | list, value: Any = _NO_VALUE) -> str:
    """('body', 'lines', 0, 'sku') -> 'lines[0].sku'; pydantic's union-member and validator
    names are left out (('body', 'attributes', 'a', 'constrained-str') -> 'attributes.a').

    `value`, when given, is what the location points into (the request body): a part that is
    a key there is a field even when it looks like a tag (AdjustmentIn's `set`)."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
            value = value[p] if isinstance(value, list) and -len(value) <= p < len(value) else _NO_VALUE
        else:
            p = str(p)
            if isinstance(value, dict) and p in value:
                value = value[p]
            elif _SCHEMA_TAG.match(p):
                continue
            else:
                value = _NO_VALUE
            out += ("." if out else "") + p
    return out or "body"


def _validation_errors(exc: RequestValidationError) -> tuple[bool, list[dict[str, str]]]:
    invalid_json = False
    items = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            invalid_json = True
        loc = err.get("loc", ())
        msg = err.get("msg", "Invalid value")
        if err.get("type") == "extra_forbidden":
            msg = "Unknown field."
        elif err.get("type") == "missing":
            msg = "Field required."
        body = getattr(exc, "body", _NO_VALUE) if loc and loc[0] == "body" else _NO_VALUE
        items.append({"field": field_path(loc, body), "message": msg})
    # one entry per field: a value no member of a union accepts gives one error per member
    merged: dict[str, list[str]] = {}
    for it in items:
        msgs = merged.setdefault(it["field"], [])
        if it["message"] not in msgs:
            msgs.append(it["message"])
    return invalid_json, [{"field": f, "message": "; ".join(m)} for f, m in merged.items()]


# The order an Allow header lists methods in.
METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def path_methods(scope) -> set[str]:
    """Every method the app's routes serve at the request's path, HEAD wherever GET is served
    (app.core.head answers it). Reads `scope["app"]` (set by the application before any
    middleware runs); a mounted app (the docs' static files) contributes nothing."""
    from fastapi.routing import iter_route_contexts

    try:
        from starlette._utils import get_route_path

        path = get_route_path(scope)
    except ImportError:  # pragma: no cover - an older Starlette
        path = scope.get("path", "")
    methods: set[str] = set()
    for route in iter_route_contexts(getattr(scope.get("app"), "routes", ())):
        regex, route_methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and route_methods and regex.match(path):
            methods |= set(route_methods)
    if "GET" in methods:
        methods.add("HEAD")
    return methods


def allowed_methods(request: Request) -> str | None:
    """Every method the request's path supports, for the Allow header of a 405.

    The router answers 405 from the first route whose path matches, so its Allow lists only
    that route's methods (GET for /v1/channels/{code}, which PATCH serves too); here every
    route of the app whose path pattern matches contributes its methods."""
    methods = path_methods(request.scope)
    if not methods:
        return None
    return ", ".join(sorted(methods, key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), m)))


def install_error_handlers(app: FastAPI) -> None:
    from app.core.openapi import install_openapi

    install_openapi(app)  # the OpenAPI document declares these problem+json answers per operation

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError):
        return problem_response(exc.status, exc.code, exc.detail, exc.errors, headers=exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError):
        invalid_json, items = _validation_errors(exc)
        if invalid_json:
            return problem_response(400, "invalid_json", "The request body is not valid JSON.", items)
        if not items:
            items = [{"field": "body", "message": "Invalid request."}]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in items[:5])
        return problem_response(422, "validation_error", f"The request is invalid ({detail}).", items)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException):
        status = exc.status_code
        code = DEFAULT_CODES.get(status, "error")
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(status, "Error")
        if status == 404 and detail == "Not Found":
            detail = "No such endpoint or resource."
        headers = getattr(exc, "headers", None)
        if status == 405:  # Allow: every method of the path (a mounted app's own, e.g. the docs' files)
            allow = allowed_methods(_request) or (headers or {}).get("Allow")
            if allow:
                headers = {**(headers or {}), "Allow": allow}
                if detail == TITLES[405]:
                    detail = f"The method {_request.method} is not allowed here; allowed: {allow}."
        return problem_response(status, code, detail, headers=headers)

    @app.exception_handler(Exception)
    async def _unhandled(_request: Request, exc: Exception):  # pragma: no cover - must never happen
        import logging

        logging.getLogger("app").exception("unhandled error", exc_info=exc)
        return problem_response(500, "internal_error", "An unexpected error occurred.")
