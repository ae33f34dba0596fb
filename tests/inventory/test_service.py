"""The functions orders will call: reserve, release, commit (sale), receive (returns), availability."""
import pytest

from app.core.db import sessionmaker
from app.core.errors import ApiError
from app.inventory import service
from tests.inventory.builders import ledger_matches, level, put_levels


async def test_reserve_commit_receive_release(client, admin, world):
    w = world
    await put_levels(client, admin, w.hh, **{w.a: 5, w.b: 6})
    async with sessionmaker()() as s:
        held = await service.reserve_stock(s, [(w.a, w.hh, 2), (w.box, w.hh, 1), (w.free, w.hh, 99)], reference="ord_1")
        await s.commit()
    assert {k[0]: q for k, q in held.items()} == {w.a: 3, w.b: 2}  # the bundle held 1 A + 2 B; the untracked SKU nothing
    assert (await level(client, admin, w.a, w.hh))["reserved"] == 3
    async with sessionmaker()() as s:  # goods leave: a sale of what was held
        await service.commit_stock(s, [(w.a, w.hh, 2), (w.box, w.hh, 1)], reference="ord_1")
        await s.commit()
    a, b = await level(client, admin, w.a, w.hh), await level(client, admin, w.b, w.hh)
    assert (a["on_hand"], a["reserved"], b["on_hand"], b["reserved"]) == (2, 0, 4, 0)
    async with sessionmaker()() as s:  # a return of one A, resellable
        await service.receive_stock(s, [(w.a, w.hh, 1)], reason="return", reference="ret_1")
        await s.commit()
    assert (await level(client, admin, w.a, w.hh))["on_hand"] == 3
    moves = (await client.get("/v1/inventory/movements", params={"sku": w.a, "location": w.hh}, headers=admin)).json()["data"]
    # one movement per (sku, location) and call: the line's 2 and the bundle's 1 leave as one sale of 3
    assert [(m["quantity"], m["reason"], m["reference"]) for m in moves] == [(5, "count", None), (-3, "sale", "ord_1"),
                                                                             (1, "return", "ret_1")]
    async with sessionmaker()() as s:  # releasing more than is held never goes below zero
        await service.release_stock(s, [(w.a, w.hh, 5)], reference="ord_2")
        await s.commit()
    assert (await level(client, admin, w.a, w.hh))["reserved"] == 0
    async with sessionmaker()() as s:
        avail = await service.availability(s, [w.a, w.box, w.free], [w.hh])
    assert avail == {w.a: {w.hh: 3}, w.box: {w.hh: 2}}  # min(3 // 1, 4 // 2); untracked: absent (no limit)
    assert await ledger_matches([w.a, w.b]) == []


async def test_all_or_nothing_with_every_shortage_named(client, admin, world):
    w = world
    await put_levels(client, admin, w.hh, **{w.a: 1, w.b: 1})
    async with sessionmaker()() as s:
        with pytest.raises(service.InsufficientStock) as e:
            await service.reserve_stock(s, [(w.a, w.hh, 1), (w.b, w.hh, 2), (w.c, w.be, 1)], reference="ord_3")
        await s.rollback()
    assert [(x["sku"], x["location"], x["requested"], x["available"]) for x in e.value.shortages] == \
        sorted([(w.b, w.hh, 2, 1), (w.c, w.be, 1, 0)])
    assert (await level(client, admin, w.a, w.hh))["reserved"] == 0  # nothing held
    async with sessionmaker()() as s:
        with pytest.raises(service.InsufficientStock):
            await service.commit_stock(s, [(w.a, w.hh, 2)], reference="ord_4")
        await s.rollback()
        with pytest.raises(ApiError) as bad:
            await service.reserve_stock(s, [("NO-SUCH", w.hh, 1)], reference=None)
        assert bad.value.status == 422 and bad.value.errors[0]["field"] == "lines[0].sku"
