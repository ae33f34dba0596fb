"""RFC 9457 problem+json errors. Every failure the API returns goes through here."""
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
    503: "unavailable",
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


def field_path(loc: tuple | list) -> str:
    """('body', 'lines', 0, 'sku') -> 'lines[0].sku'."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            p = str(p)
            # pydantic adds the union member / function name to the location; skip those
            if p.startswith("function-") or p in ("function-after", "function-before"):
                continue
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
        items.append({"field": field_path(loc), "message": msg})
    return invalid_json, items


def install_error_handlers(app: FastAPI) -> None:
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
        return problem_response(status, code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unhandled(_request: Request, exc: Exception):  # pragma: no cover - must never happen
        import logging

        logging.getLogger("app").exception("unhandled error", exc_info=exc)
        return problem_response(500, "internal_error", "An unexpected error occurred.")
