"""Who is calling, and what they are bound to."""
from dataclasses import dataclass

from fastapi import Request

from app.core.errors import ApiError

ROLES = ("admin", "storefront", "pos", "marketplace", "dropshipper")


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    role: str
    channel_id: str | None = None
    channel: str | None = None  # channel code
    location_id: str | None = None
    location: str | None = None  # location code
    rate_limit: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def channel_or_404(self, code_or_id: str | None, what: str = "Channel") -> None:
        if self.is_admin:
            return
        if code_or_id is None or code_or_id not in (self.channel, self.channel_id):
            raise ApiError(404, "not_found", f"{what} {code_or_id!r} was not found.")

    def location_or_404(self, code_or_id: str | None, what: str = "Location") -> None:
        if self.is_admin:
            return
        if code_or_id is None or code_or_id not in (self.location, self.location_id):
            raise ApiError(404, "not_found", f"{what} {code_or_id!r} was not found.")


def current_principal(request: Request) -> Principal | None:
    return request.scope.get("state", {}).get("principal")


def require(*roles: str):
    """Dependency: the caller must be authenticated with one of `roles` (admin always passes)."""
    allowed = set(roles) | {"admin"}

    async def dependency(request: Request) -> Principal:  # async: no I/O, so no thread-pool hop
        principal = current_principal(request)
        if principal is None:
            raise ApiError(
                401, "unauthenticated", "Send a valid API key as 'Authorization: Bearer <secret>'.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if principal.role not in allowed:
            raise ApiError(403, "forbidden", f"The {principal.role} role may not do this.")
        return principal

    dependency.__name__ = f"require_{'_'.join(sorted(allowed))}"
    return dependency


ADMIN = require("admin")
ANY_ROLE = require(*ROLES)
