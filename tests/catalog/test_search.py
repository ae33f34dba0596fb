"""Search, filters, cursor pagination, the scan lookup and its SQL budget."""
import secrets
from datetime import timedelta

from app.core import clock
from app.core.db import sql_statements
from tests.catalog.builders import Keys, create_product, gtin, sku
from app.core import cache
from tests.helpers import assert_problem, warm_keys


async def _titles(client, headers, **params) -> list[str]:
    r = await client.get("/v1/products", params={"limit": 500, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return [p["title"] for p in r.json()["data"]]


async def test_search_and_filters(client, admin):
    tag = f"srch{secrets.token_hex(3)}"
    g = gtin()
    s_shirt = sku(f"{tag}SHIRT")
    shirt = await create_product(client, admin, title=f"{tag} Striped Shirt", category=f"{tag}/fashion/shirts",
                                 variants=[{"sku": s_shirt, "gtin": g}])
    await create_product(client, admin, title=f"{tag} Wine_100%", category=f"{tag}/grocery/wine", status="draft",
                         variants=[{"sku": sku(f"{tag}WINE")}])
    await create_product(client, admin, title=f"{tag} Cheese", category=f"{tag}/grocery/cheese", type="standard",
                         variants=[{"sku": sku(f"{tag}CHEESE")}])
    await create_product(client, admin, title=f"{tag}-not-a-grocery", category=f"{tag}/groceryshop",
                         variants=[{"sku": sku(f"{tag}SHOP")}])
    # q: title (case-insensitive), sku, gtin
    assert await _titles(client, admin, q=f"{tag} STRIPED") == [shirt["title"]]
    assert await _titles(client, admin, q=s_shirt.lower()) == [shirt["title"]]
    assert await _titles(client, admin, q=g[3:10]) == [shirt["title"]]
    # LIKE wildcards are literal
    assert await _titles(client, admin, q=f"{tag} wine_100%") == [f"{tag} Wine_100%"]
    assert await _titles(client, admin, q=f"{tag} wine%") == []
    assert await _titles(client, admin, q=f"{tag}%") == []
    # category: the category and everything below it (not a mere string prefix)
    assert sorted(await _titles(client, admin, category=f"{tag}/grocery")) == [f"{tag} Cheese", f"{tag} Wine_100%"]
    assert await _titles(client, admin, category=f"{tag}/grocery/cheese") == [f"{tag} Cheese"]
    assert len(await _titles(client, admin, category=tag)) == 4
    # status and type
    assert await _titles(client, admin, q=tag, status="draft") == [f"{tag} Wine_100%"]
    assert await _titles(client, admin, q=tag, type="bundle") == []
    # bad values -> 422
    for params in ({"status": "gone"}, {"type": "kit"}, {"updated_since": "yesterday"}, {"limit": 0}, {"limit": 501},
                   {"cursor": "%%%"}, {"q": "x" * 201}, {"q": "a\u0000b"}, {"updated_since": "2026-13-45T00:00:00Z"}):
        assert_problem(await client.get("/v1/products", params=params, headers=admin), 422, "validation_error")


async def test_updated_since(client, admin):
    tag = f"upd{secrets.token_hex(3)}"
    old = await create_product(client, admin, title=f"{tag} old")
    try:
        clock.advance(timedelta(hours=1))
        cut = clock.now()
        new = await create_product(client, admin, title=f"{tag} new")
        since = cut.isoformat().replace("+00:00", "Z")
        assert await _titles(client, admin, q=tag, updated_since=since) == [new["title"]]
        # an unencoded '+' arrives as a space; offsets are honoured
        plus = (cut + timedelta(hours=2)).astimezone().isoformat()
        r = await client.get(f"/v1/products?q={tag}&updated_since={plus.replace('+', '%20')}", headers=admin)
        assert r.status_code == 200
        assert await _titles(client, admin, q=tag, updated_since=(cut - timedelta(hours=2)).isoformat()) == [old["title"], new["title"]]
        # a change moves the product into the window
        clock.advance(timedelta(hours=1))
        await client.patch(f"/v1/products/{old['id']}", json={"description": "changed"}, headers=admin)
        later = (cut + timedelta(minutes=30)).isoformat()
        assert await _titles(client, admin, q=tag, updated_since=later) == [old["title"]]
    finally:
        clock.reset()


async def test_pagination_walk(client, admin):
    tag = f"page{secrets.token_hex(3)}"
    made = [await create_product(client, admin, title=f"{tag} {i:02d}") for i in range(7)]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"q": tag, "limit": 3}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/v1/products", params=params, headers=admin)
        assert r.status_code == 200
        body = r.json()
        seen += [p["id"] for p in body["data"]]
        pages += 1
        # a product created mid-walk appears at the end, nothing is skipped or repeated
        if pages == 1:
            made.append(await create_product(client, admin, title=f"{tag} late"))
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(p["id"] for p in made) and pages == 3
    assert len(set(seen)) == len(seen)


async def test_scan_lookup_and_sql_budget(client, admin):
    k = await Keys().setup(client, admin)
    g = gtin()
    p = await create_product(client, admin, status="active", channels=[k.web, k.pos_channel],
                             variants=[{"sku": sku("SCAN"), "gtin": g, "options": {"size": "M"}}])
    s = p["variants"][0]["sku"]
    for _ in range(2):
        await create_product(client, admin, status="active", channels=[k.web])
    # by gtin, in any GTIN-13/14 spelling, and by sku
    for params in ({"gtin": g}, {"gtin": "0" + g}, {"sku": s}):
        r = await client.get("/v1/variants", params=params, headers=k.pos_bound)
        assert r.status_code == 200, r.text
        v = r.json()
        assert v["sku"] == s and v["gtin"] == g and v["product_id"] == p["id"] and v["status"] == "active"
        assert v["product_title"] == p["title"] and v["tax_class"] == "standard" and v["handle"] == p["handle"]
    assert_problem(await client.get("/v1/variants", params={"gtin": gtin()}, headers=k.pos_bound), 404, "not_found")
    assert_problem(await client.get("/v1/variants", params={"sku": "NO-SUCH"}, headers=k.pos_bound), 404, "not_found")
    for params in ({}, {"sku": s, "gtin": g}, {"sku": "x" * 101}, {"gtin": "1" * 101}):
        assert_problem(await client.get("/v1/variants", params=params, headers=admin), 422, "validation_error")
    # not a GTIN (letters, length, check digit): 422 invalid_gtin naming the parameter, never a 404
    bad_check = g[:-1] + str((int(g[-1]) + 1) % 10)
    for bad in ("12ab", "1" * 15, "12345", bad_check, "٤٠٠٦٣٨١٣٣٣٩٣١"):
        for key in (admin, k.pos_bound):
            body = assert_problem(await client.get("/v1/variants", params={"gtin": bad}, headers=key), 422, "invalid_gtin")
            assert [e["field"] for e in body["errors"]] == ["gtin"], body
    assert "check digit" in assert_problem(await client.get("/v1/variants", params={"gtin": bad_check}, headers=admin),
                                           422)["errors"][0]["message"]

    await warm_keys(client, k.pos_bound, k.storefront, admin)
    for headers in (k.pos_bound, k.storefront):  # priced answers: the channel and price lists are in their caches too
        assert (await client.get(f"/v1/variants/{s}", headers=headers)).status_code == 200
    with sql_statements() as statements:
        for headers in (k.pos_bound, k.storefront, admin):
            for params in ({"sku": s}, {"gtin": g}):
                cache.drop("catalog")  # what a catalog change does: the next answer is read anew
                statements.clear()
                r = await client.get("/v1/variants", params=params, headers=headers)
                assert r.status_code == 200
                # ONE catalog query (variant ⋈ product ⟕ components); the key comes from the cache
                assert len(statements) == 1, statements
                catalog = [x for x in statements if "variants" in x]
                assert len(catalog) == 1 and "products" in catalog[0]
                statements.clear()
                again = await client.get("/v1/variants", params=params, headers=headers)
                assert again.content == r.content and statements == []  # then from memory
        # a list of products renders with a constant number of statements, whatever the page size
        counts = []
        for limit in (1, 20):
            cache.drop("catalog")
            statements.clear()
            r = await client.get("/v1/products", params={"limit": limit}, headers=k.storefront)
            assert r.status_code == 200
            counts.append(len(statements))
        # the page of products (with their channels) + all their variants (the key: cached)
        assert counts == [2, 2], counts
        cache.drop("catalog")
        statements.clear()
        assert (await client.get(f"/v1/products/{p['id']}", headers=k.storefront)).status_code == 200
        assert len(statements) == 2, statements  # the product, its variants (the key: cached)
