"""Column helpers shared by every domain's table models."""
from datetime import datetime
from typing import Any

from sqlmodel import Field

from app.core import clock
from app.core.db import JSONType, UTCDateTime


def id_field(**kw: Any) -> Any:
    return Field(primary_key=True, max_length=40, **kw)


def ts_field(*, nullable: bool = False, index: bool = False, default_now: bool = True) -> Any:
    kw: dict[str, Any] = {"sa_type": UTCDateTime, "nullable": nullable, "index": index}
    if default_now and not nullable:
        kw["default_factory"] = clock.now
    else:
        kw["default"] = None
    return Field(**kw)


def json_field(default_factory=dict, nullable: bool = False) -> Any:
    return Field(default_factory=default_factory, sa_type=JSONType, nullable=nullable)


def updated_now() -> datetime:
    return clock.now()
