"""The reports' calendar days in a time zone, on the database itself: PostgreSQL's time-zone
database on one side, the offsets worked out for SQLite (a CASE over the changes) on the other,
both against Python's zoneinfo, around the changes to and from summer time."""
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import literal, select

from app.core.db import UTCDateTime, is_postgres, sessionmaker
from app.reports.period import Period, local_day, offsets, period

BERLIN = ZoneInfo("Europe/Berlin")


def test_offsets_change_where_the_zone_does():
    p = Period(datetime(2030, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC), "Europe/Berlin")
    assert offsets(p) == [(datetime(2030, 3, 31, 1, tzinfo=UTC), 3600), (datetime(2030, 10, 27, 1, tzinfo=UTC), 7200),
                          (None, 3600)]
    assert offsets(Period(p.start, p.end, "UTC")) == [(None, 0)]
    assert offsets(Period(p.start, p.end, "Asia/Kolkata")) == [(None, 19800)]


def test_dates_are_whole_days_of_the_zone():
    p = period("2030-03-31", "2030-03-31", "Europe/Berlin", max_days=1)
    assert (p.start, p.end) == (datetime(2030, 3, 30, 23, tzinfo=UTC), datetime(2030, 3, 31, 22, tzinfo=UTC))  # 23 h
    p = period("2030-03-31T12:00:00", "2030-03-31T13:00:00+00:00", "Europe/Berlin", max_days=1)
    assert p.start == datetime(2030, 3, 31, 10, tzinfo=UTC)  # no offset: read in the zone (summer time, +2)


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"])
async def test_local_day_on_the_database(zone):
    tz = ZoneInfo(zone)
    p = period("2030-01-01", "2030-12-31", zone, max_days=366)
    moments = [datetime(2030, m, d, h, mi, tzinfo=UTC) for m, d in ((3, 9), (3, 10), (3, 30), (3, 31), (4, 1),
                                                                     (4, 6), (10, 5), (10, 26), (10, 27), (11, 2),
                                                                     (11, 3)) for h, mi in ((0, 30), (1, 0), (1, 59),
                                                                                            (2, 30), (13, 0), (14, 30),
                                                                                            (15, 30), (22, 30), (23, 30))]
    moments = [m for m in moments if p.start <= m < p.end]
    async with sessionmaker()() as session:
        pg = is_postgres(session)
        days = [str((await session.execute(select(local_day(pg, literal(m, UTCDateTime()), p)))).scalar_one())
                for m in moments]
    assert days == [str(m.astimezone(tz).date()) for m in moments]
    assert len(set(days)) > 10
    assert any(m.astimezone(tz).date() != m.date() for m in moments) or zone == "UTC"
