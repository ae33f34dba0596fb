"""The reports' time axis and paging: a period [from, to) in UTC, calendar days in a time zone,
and the cursor over groups.

A period is given by `from` and `to`, each a date (`2026-03-01`: that whole day in `tz`, so
`from=2026-03-01&to=2026-03-31` is all of March) or an RFC 3339 timestamp (an instant; without
an offset it is read in `tz`): `from` inclusive, `to` exclusive (a date `to` ends at the end of
that day). Defaults: `to` now, `from` 30 days before `to`. `tz` is an IANA zone name (default
UTC); it decides where a date starts and ends and which day an order falls on.

Calendar days of a zone: PostgreSQL converts with its own time-zone database (`timezone(tz,
created_at)`); SQLite has none, so the zone's UTC offsets over the period are worked out here
(zoneinfo) and the day is `date(created_at, '<offset> seconds')` of the offset in force, a CASE
over the moments the offset changes (twice a year for a zone with summer time): one expression,
still set-based.
"""
import base64
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Date, bindparam, case, cast, func

from app.core import clock
from app.core.errors import ApiError

DEFAULT_DAYS = 30
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    tz: str  # IANA name

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def render(self) -> dict:
        return {"from": _rfc3339(self.start), "to": _rfc3339(self.end), "tz": self.tz}


def _rfc3339(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def bad(field: str, message: str) -> ApiError:
    return ApiError(422, "validation_error", f"{field}: {message}", errors=[{"field": field, "message": message}])


def parse_zone(raw: str | None) -> str:
    if raw is None or raw == "UTC":
        return "UTC"
    try:
        if len(raw) > 64 or raw.startswith("/") or ".." in raw:
            raise ValueError(raw)
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise bad("tz", f"Unknown time zone {raw!r}: an IANA name like Europe/Berlin.") from None
    return raw


def parse_moment(field: str, raw: str, zone: ZoneInfo, *, end: bool) -> datetime:
    """A date (its start in `zone`; for the end of a period, the start of the next day) or an
    RFC 3339 timestamp (without an offset: in `zone`), as UTC."""
    raw = raw.strip()
    try:
        if _DATE.match(raw):
            day = date.fromisoformat(raw) + (timedelta(days=1) if end else timedelta(0))
            return datetime.combine(day, time(0), zone).astimezone(UTC)
        day, sep, rest = raw.partition("T")
        if sep:  # an unencoded '+' of the offset arrives as a space
            raw = day + "T" + rest.replace(" ", "+")
        if not sep or len(day) != 10:
            raise ValueError(raw)
        ts = datetime.fromisoformat(raw.replace("z", "Z").replace("Z", "+00:00"))
        return (ts if ts.tzinfo is not None else ts.replace(tzinfo=zone)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise bad(field, "Expected a date (2026-03-01) or an RFC 3339 timestamp (2026-03-01T00:00:00Z).") from None


def period(from_raw: str | None, to_raw: str | None, tz_raw: str | None, *, max_days: int,
           why: str = "") -> Period:
    """The period asked for, checked: `from` before `to` and at most `max_days` days apart
    (an hour more for a zone's change to summer time): else 422 naming the field."""
    tz = parse_zone(tz_raw)
    zone = ZoneInfo(tz)
    end = parse_moment("to", to_raw, zone, end=True) if to_raw is not None else clock.now()
    start = (parse_moment("from", from_raw, zone, end=False) if from_raw is not None
             else end - timedelta(days=DEFAULT_DAYS))
    if start >= end:
        raise bad("to", f"The period is empty or inverted: to ({_rfc3339(end)}) must come after from "
                        f"({_rfc3339(start)}).")
    if end - start > timedelta(days=max_days, hours=1):
        raise bad("from", f"The period spans {(end - start).days} days; at most {max_days}{why}. Ask for "
                          f"shorter periods.")
    return Period(start, end, tz)


# --------------------------------------------------------------------------- calendar days

def _offset(zone: ZoneInfo, at: datetime) -> int:
    return int(at.astimezone(zone).utcoffset().total_seconds())


def offsets(p: Period) -> list[tuple[datetime | None, int]]:
    """[(until, UTC offset in seconds)] in force over the period: each until the next change
    (None: to the end). Day by day, then to the second where the offset changes."""
    zone = p.zone
    spans: list[tuple[datetime | None, int]] = []
    current = _offset(zone, p.start)
    day = p.start
    while day < p.end:
        nxt = min(day + timedelta(days=1), p.end)
        if _offset(zone, nxt) != current:
            lo, hi = day, nxt  # the change is in (lo, hi]
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                if _offset(zone, mid) == current:
                    lo = mid
                else:
                    hi = mid
            hi = hi.replace(microsecond=0)
            spans.append((hi, current))
            current = _offset(zone, hi)
            nxt = hi
        day = nxt
    spans.append((None, current))
    return spans


def local_day(pg: bool, column, p: Period):
    """The calendar day of a timestamp column in the period's zone: a date on PostgreSQL, text
    YYYY-MM-DD on SQLite (str() of either is the same)."""
    if pg:  # a date (4 bytes to group by; to_char per row costs several times more). The zone is written
        # into the statement (a checked IANA name): it then matches the expression statistics of migration
        # 0017 (UTC, Europe/Berlin), which tell the planner how few days there are (a parallel plan)
        return cast(func.timezone(bindparam(None, p.tz, literal_execute=True), column), Date)

    def shifted(seconds: int):
        return func.date(column, f"{seconds:+d} seconds") if seconds else func.date(column)

    spans = offsets(p)
    if len(spans) == 1:
        return shifted(spans[0][1])
    return case(*[(column < until, shifted(off)) for until, off in spans[:-1]], else_=shifted(spans[-1][1]))


# --------------------------------------------------------------------------- group cursor

def encode_cursor(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(raw: str | None, size: int) -> list | None:
    """The group a page starts after: a list of `size` strings; 422 naming `cursor` otherwise."""
    if raw is None:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if not (isinstance(values, list) and len(values) == size and all(isinstance(v, str) for v in values)):
            raise ValueError(raw)
    except ValueError:
        raise bad("cursor", "Invalid cursor: pass next_cursor of the previous page as it was.") from None
    return values
