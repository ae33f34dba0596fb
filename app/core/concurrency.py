"""Optimistic concurrency: integer `version`, `ETag: "<version>"`, `If-Match`."""
from typing import Any

from fastapi import Request

from app.core import clock
from app.core.errors import ApiError


def etag(version: int) -> str:
    return f'"{version}"'


def if_match_version(request: Request) -> int | None:
    """The version a client asserts with If-Match, or None when it sent none (or `*`)."""
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    raw = raw.strip()
    if raw == "*" or raw == "":
        return None
    if raw.startswith("W/"):
        raw = raw[2:]
    raw = raw.strip('"')
    try:
        return int(raw)
    except ValueError:
        raise ApiError(412, "version_conflict", "If-Match must be an ETag this API returned, like \"3\".") from None


def check_version(request: Request, current: int, body_version: int | None = None) -> None:
    """412 when If-Match (or a `version` in the body) names another version than the current one."""
    wanted = if_match_version(request)
    for v in (wanted, body_version):
        if v is not None and v != current:
            raise ApiError(
                412, "version_conflict",
                f"The resource is at version {current}, the request expected version {v}.",
                current_version=current,
            )


def apply_changes(obj: Any, changes: dict[str, Any]) -> dict[str, Any]:
    """Set the fields that really differ, then bump `version` and `updated_at` once. Returns
    what changed (empty: nothing to write, the version stays)."""
    changed = {k: v for k, v in changes.items() if getattr(obj, k) != v}
    if changed:
        for k, v in changed.items():
            setattr(obj, k, v)
        obj.version += 1
        obj.updated_at = clock.now()
    return changed
