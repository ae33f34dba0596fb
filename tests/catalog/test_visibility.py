"""Who sees what: roles × bindings × status × channel visibility."""
import secrets

import pytest

from tests.catalog.builders import Keys, create_product, sku
from tests.helpers import assert_problem


@pytest.fixture(scope="module")
async def world(client, admin):
    k = await Keys().setup(client, admin)
    tag = f"vis{secrets.token_hex(3)}"
    specs = {
        "A": ("active", [k.web, k.market]),
        "B": ("active", [k.market]),
        "C": ("draft", [k.web, k.market, k.pos_channel]),
        "D": ("active", [k.pos_channel]),
        "E": ("archived", [k.web]),
        "F": ("active", []),
    }
    products = {}
    for name, (status, channels) in specs.items():
        products[name] = await create_product(client, admin, title=f"{tag} {name}", status=status, channels=channels,
                                              variants=[{"sku": sku(f"{tag}{name}")}])
    return k, tag, products


async def _names(client, headers, tag, **params) -> set[str]:
    r = await client.get("/v1/products", params={"q": tag, "limit": 500, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return {p["title"].split()[-1] for p in r.json()["data"]}


async def test_visibility_matrix(client, admin, world):
    k, tag, products = world
    expected = {
        "admin": (admin, set("ABCDEF")),
        "storefront": (k.storefront, {"A"}),
        "storefront other channel": (k.storefront2, set()),
        "marketplace": (k.marketplace, {"A", "B"}),
        "pos bound to a pos channel": (k.pos_bound, {"D"}),
    }
    for who, (headers, names) in expected.items():
        assert await _names(client, headers, tag) == names, who
        for name, p in products.items():
            sku_ = p["variants"][0]["sku"]
            by_id = await client.get(f"/v1/products/{p['id']}", headers=headers)
            by_handle = await client.get(f"/v1/products/{p['handle']}", headers=headers)
            scan = await client.get("/v1/variants", params={"sku": sku_}, headers=headers)
            detail = await client.get(f"/v1/variants/{sku_}", headers=headers)
            for resp in (by_id, by_handle, scan, detail):
                if name in names:
                    assert resp.status_code == 200, (who, name, resp.text)
                else:
                    assert_problem(resp, 404, "not_found")


async def test_bound_keys_cannot_widen_and_see_only_their_channel(client, admin, world):
    k, tag, products = world
    # filters narrow, never widen
    assert await _names(client, k.storefront, tag, channel=k.market) == set()
    assert await _names(client, k.storefront, tag, channel=k.web) == {"A"}
    assert await _names(client, k.storefront, tag, status="draft") == set()
    assert await _names(client, k.marketplace, tag, status="active") == {"A", "B"}
    # admin filters by channel and status
    assert await _names(client, admin, tag, channel=k.web) == {"A", "C", "E"}
    assert await _names(client, admin, tag, status="draft") == {"C"}
    assert await _names(client, admin, tag, status="archived", channel=k.web) == {"E"}
    # a storefront is told only about its own channel
    a = (await client.get(f"/v1/products/{products['A']['id']}", headers=k.storefront)).json()
    assert a["channels"] == [k.web]
    a = (await client.get(f"/v1/products/{products['A']['id']}", headers=admin)).json()
    assert a["channels"] == sorted([k.web, k.market])
    # categories follow visibility too
    r = await client.get("/v1/categories", headers=k.storefront)
    assert r.status_code == 200 and isinstance(r.json()["data"], list)


async def test_roles(client, admin, world):
    k, tag, products = world
    a = products["A"]
    # no key / unknown key -> 401
    for path in ("/v1/products", f"/v1/products/{a['id']}", f"/v1/variants?sku={a['variants'][0]['sku']}", "/v1/categories"):
        assert_problem(await client.get(path), 401, "unauthenticated")
        assert_problem(await client.get(path, headers={"Authorization": "Bearer nope"}), 401, "unauthenticated")
        # dropshippers have no catalog access
        assert_problem(await client.get(path, headers=k.dropshipper), 403, "forbidden")
    # only admin writes
    for headers in (k.storefront, k.marketplace, k.pos_bound, k.dropshipper):
        assert_problem(await client.post("/v1/products", json={"title": "x", "variants": [{"sku": sku()}]}, headers=headers),
                       403, "forbidden")
        assert_problem(await client.patch(f"/v1/products/{a['id']}", json={"title": "x"}, headers=headers), 403, "forbidden")
        assert_problem(await client.post(f"/v1/products/{a['id']}/variants", json={"sku": sku()}, headers=headers),
                       403, "forbidden")
        assert_problem(await client.patch(f"/v1/variants/{a['variants'][0]['sku']}", json={"title": "x"}, headers=headers),
                       403, "forbidden")
        assert_problem(await client.delete(f"/v1/variants/{a['variants'][0]['sku']}", headers=headers), 403, "forbidden")
        assert_problem(await client.post("/v1/catalog/import", content=b'{"sku": "X"}\n',
                                         headers=headers | {"Content-Type": "application/x-ndjson"}), 403, "forbidden")
    assert_problem(await client.post("/v1/products", json={"title": "x", "variants": [{"sku": sku()}]}), 401)
    assert_problem(await client.post("/v1/catalog/import", content=b"{}",
                                     headers={"Content-Type": "application/x-ndjson"}), 401)


async def test_status_change_hides_from_channels(client, admin, world):
    k, tag, _ = world
    p = await create_product(client, admin, title=f"{tag}x G", status="active", channels=[k.web])
    url = f"/v1/products/{p['id']}"
    assert (await client.get(url, headers=k.storefront)).status_code == 200
    r = await client.patch(url, json={"status": "archived"}, headers=admin)
    assert r.status_code == 200
    assert_problem(await client.get(url, headers=k.storefront), 404, "not_found")
    r = await client.patch(url, json={"status": "active", "channels": []}, headers=admin)
    assert_problem(await client.get(url, headers=k.storefront), 404, "not_found")
    assert_problem(await client.get(url, headers=k.pos_bound), 404, "not_found")  # POS keys see their pos channel only
