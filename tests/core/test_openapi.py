"""The OpenAPI document declares the problem+json answers of every operation (with the codes
each can answer), the Bearer scheme, the Idempotency-Key and If-Match headers, and the rules
that pydantic cannot enforce on its own (one of sku/gtin, one of delta/set, from ≠ to).
/docs and /redoc load only files the app serves itself (no CDN)."""
import re
from html.parser import HTMLParser

import pytest

from app.core.openapi import needs_key
from app.core.schemas import Problem
from tests.conftest import uid
from tests.helpers import assert_problem, create_channel

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
async def spec(client) -> dict:
    r = await client.get("/openapi.json")
    assert r.status_code == 200, r.text
    return r.json()


def _statuses(spec: dict, method: str, path: str) -> set[int]:
    op = spec["paths"][path][method]
    out = set()
    for code, response in op["responses"].items():
        if int(code) >= 400:
            assert list(response["content"]) == [PROBLEM], (method, path, code)
            assert response["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
            assert response["description"]
            out.add(int(code))
    return out


async def test_problem_schema_is_a_component(spec):
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code", "errors"}
    assert problem["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/ProblemFieldError"}
    # FastAPI's own 422 shape is never sent, so it is not documented either
    assert "HTTPValidationError" not in spec["components"]["schemas"]


async def test_every_operation_declares_its_problems(spec):
    operations = 0
    for path, item in spec["paths"].items():
        for method, op in item.items():
            operations += 1
            statuses = _statuses(spec, method, path)
            if needs_key(path):
                assert {401, 429, 503} <= statuses, (method, path, statuses)
                if op.get("parameters") or "requestBody" in op:
                    assert 422 in statuses, (method, path)
                if "{" in path:
                    assert 404 in statuses, (method, path)
                if "requestBody" in op:
                    assert {400, 413, 415, 422} <= statuses, (method, path)
                if method == "patch":
                    assert {409, 412} <= statuses, (method, path)
                if method == "post":
                    assert {409, 422} <= statuses, (method, path)  # Idempotency-Key in use / reused
    assert operations >= 40


async def test_a_sample_of_operations(spec):
    assert _statuses(spec, "get", "/v1/channels/{ref}") == {401, 404, 422, 429, 503}  # every role may read
    assert _statuses(spec, "patch", "/v1/channels/{ref}") == {400, 401, 403, 404, 409, 412, 413, 415, 422, 429, 503}
    assert _statuses(spec, "post", "/v1/channels") == {400, 401, 403, 409, 413, 415, 422, 429, 503}
    assert _statuses(spec, "put", "/v1/price-lists/{ref}/prices") >= {404, 412, 413, 422}
    assert _statuses(spec, "post", "/v1/inventory/transfers/{tid}/dispatch") >= {404, 409, 412}
    assert 404 in _statuses(spec, "post", "/v1/reservations")  # a location outside a POS key's store
    assert 412 not in _statuses(spec, "delete", "/v1/reservations/{rid}")
    assert _statuses(spec, "get", "/healthz") == set()
    assert _statuses(spec, "get", "/readyz") == {503}
    headers = spec["paths"]["/v1/channels"]["post"]["responses"]["429"]["headers"]
    assert "Retry-After" in headers
    assert "idempotency_key_reused" in spec["paths"]["/v1/channels"]["post"]["responses"]["422"]["description"]


async def test_a_real_problem_matches_the_documented_one(client, admin):
    r = await client.get("/v1/channels/no-such-channel", headers=admin)
    Problem.model_validate(assert_problem(r, 404, "not_found"))
    r = await client.post("/v1/channels", json={"code": "x"}, headers=admin)
    problem = Problem.model_validate(assert_problem(r, 422, "validation_error"))
    assert problem.errors and all(e.field and e.message for e in problem.errors)


async def test_rules_across_fields_are_documented(spec):
    lookup = spec["paths"]["/v1/variants"]["get"]
    assert "exactly one of `sku` and `gtin`" in lookup["description"]
    assert all("Exactly one of sku and gtin" in p["description"] for p in lookup["parameters"] if p["name"] in ("sku", "gtin"))
    schemas = spec["components"]["schemas"]
    adjustment = schemas["AdjustmentIn"]
    assert [b["required"] for b in adjustment["oneOf"]] == [["delta"], ["set"]]
    assert "Exactly one of `delta`" in adjustment["description"]
    assert "from" in schemas["TransferIn"]["properties"]["to"]["description"]
    # strict integers with the bounds of their columns
    price = schemas["PriceIn"]["properties"]["amount"]["anyOf"][0]
    assert price == {"type": "integer", "minimum": 0, "maximum": 10**13}


# ----------------------------------------------------------------------------- auth and headers

def _operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            yield path, method, op


def _headers(op: dict) -> set[str]:
    return {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}


async def test_bearer_scheme_on_every_operation_behind_a_key(spec):
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "security" not in spec  # per operation: the ops endpoints and webhooks need no key
    behind_key = 0
    for path, method, op in _operations(spec):
        if needs_key(path):
            behind_key += 1
            assert op["security"] == [{"bearerAuth": []}], (method, path)
        else:
            assert "security" not in op, (method, path)
            assert "401" not in op["responses"] and "429" not in op["responses"], (method, path)
    assert behind_key >= 40
    for path in ("/healthz", "/readyz", "/metrics"):
        assert "security" not in spec["paths"][path]["get"]
    if "/v1/payments/stripe/webhook" in spec["paths"]:  # signed by Stripe, no API key
        webhook = spec["paths"]["/v1/payments/stripe/webhook"]["post"]
        assert "security" not in webhook and "Idempotency-Key" not in _headers(webhook)


async def test_the_documented_scheme_is_what_the_api_takes(spec, client, admin):
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    r = await client.get("/v1/channels", headers={"Authorization": f"{scheme['scheme'].title()} {admin['Authorization'].split()[1]}"})
    assert r.status_code == 200
    assert_problem(await client.get("/v1/channels"), 401, "unauthenticated")


async def test_idempotency_key_on_every_post_behind_a_key(spec):
    posts = 0
    for path, method, op in _operations(spec):
        if method == "post" and needs_key(path):
            posts += 1
            param = next(p for p in op["parameters"] if p["name"] == "Idempotency-Key")
            assert param["in"] == "header" and param["required"] is False
            assert param["schema"] == {"type": "string", "minLength": 1, "maxLength": 255}
            assert "idempotency_key_reused" in param["description"]
            assert "idempotency_key_in_use" in op["x-error-codes"]["409"], path
            assert "idempotency_key_reused" in op["x-error-codes"]["422"], path
        elif method != "post":
            assert "Idempotency-Key" not in _headers(op), (method, path)
    assert posts >= 15


async def test_if_match_where_the_handler_reads_it(spec):
    for path, method, op in _operations(spec):
        if method == "patch":
            assert "If-Match" in _headers(op), path  # every PATCH checks the version
        if "If-Match" in _headers(op):
            assert "412" in op["responses"], (method, path)
            assert op["x-error-codes"]["412"] == ["version_conflict"], (method, path)
    # found in the handlers' code (the router, or the service it hands the request to)
    for method, path in [("patch", "/v1/channels/{ref}"), ("put", "/v1/price-lists/{ref}/prices"),
                         ("post", "/v1/inventory/transfers/{tid}/dispatch"), ("post", "/v1/carts/{cart_id}/checkout"),
                         ("post", "/v1/fulfillments/{fid}/ship"), ("post", "/v1/orders/{ref}/cancel"),
                         ("delete", "/v1/variants/{ref}")]:
        assert "If-Match" in _headers(spec["paths"][path][method]), (method, path)
    for method, path in [("post", "/v1/channels"), ("delete", "/v1/reservations/{rid}"), ("get", "/v1/channels/{ref}"),
                         ("post", "/v1/reservations")]:
        assert "If-Match" not in _headers(spec["paths"][path][method]), (method, path)


async def test_if_match_as_documented(spec, client, admin):
    ch = await create_channel(client, admin)
    path = f"/v1/channels/{ch['code']}"
    r = await client.patch(path, json={"name": "Renamed"}, headers={**admin, "If-Match": '"1"'})
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    r = await client.patch(path, json={"name": "Again"}, headers={**admin, "If-Match": '"1"'})
    code = assert_problem(r, 412)["code"]
    assert code in spec["paths"]["/v1/channels/{ref}"]["patch"]["x-error-codes"]["412"]


# ----------------------------------------------------------------------------- error codes per operation

async def test_every_operation_names_its_codes(spec):
    for path, method, op in _operations(spec):
        codes = op["x-error-codes"]
        assert set(codes) == {c for c in op["responses"] if int(c) >= 400}, (method, path)
        for status, names in codes.items():
            assert names and all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names), (method, path, status)
            description = op["responses"][status]["description"]
            if len(names) == 1 and description.startswith(f"`{names[0]}`"):
                continue  # the one code is what the description starts with
            assert description.endswith("Codes: " + ", ".join(f"`{n}`" for n in names) + "."), (method, path, status)
        if needs_key(path):
            assert codes["401"] == ["unauthenticated"] and codes["429"] == ["rate_limited"]
            assert codes["503"] == ["service_unavailable"]
        if "400" in codes:
            assert "invalid_json" in codes["400"]


async def test_codes_found_in_the_handlers(spec):
    """Codes raised deep in a domain's code, through helpers that take the code as an argument
    (`conflict("duplicate_sku", …)`) or subclasses of ApiError (WrongPickupCode)."""
    def codes(method, path, status):
        return set(spec["paths"][path][method]["x-error-codes"].get(str(status), []))

    assert {"duplicate_sku", "duplicate_gtin", "duplicate_handle"} <= codes("post", "/v1/products", 409)
    assert "duplicate_code" in codes("post", "/v1/channels", 409)
    assert "insufficient_stock" in codes("post", "/v1/inventory/adjustments", 409)
    assert "insufficient_stock" in codes("post", "/v1/reservations", 409)
    assert {"cart_completed", "insufficient_stock"} <= codes("post", "/v1/carts/{cart_id}/checkout", 409)
    assert "invalid_pickup_code" in codes("post", "/v1/fulfillments/{fid}/collect", 422)
    assert "invalid_transition" in codes("post", "/v1/inventory/transfers/{tid}/dispatch", 409)
    assert "invalid_coupon" in codes("post", "/v1/pricing/quote", 422)
    assert {"duplicate_email", "duplicate_loyalty_card"} <= codes("post", "/v1/customers", 409)
    assert codes("get", "/v1/channels/{ref}", 404) == {"not_found"}
    assert not codes("get", "/v1/channels/{ref}", 409)


async def test_a_real_answer_has_a_documented_code(spec, client, admin):
    ch = await create_channel(client, admin)
    body = {"code": ch["code"], "name": "Twice", "type": "web", "currency": "EUR", "country": "DE"}
    code = assert_problem(await client.post("/v1/channels", json=body, headers=admin), 409)["code"]
    assert code in spec["paths"]["/v1/channels"]["post"]["x-error-codes"]["409"]
    r = await client.post("/v1/channels", json=body | {"code": uid("ch")}, headers={**admin, "Idempotency-Key": "\x7f"})
    assert_problem(r, 422, "validation_error")  # an Idempotency-Key that is not printable


# ----------------------------------------------------------------------------- /docs and /redoc, offline

class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "spec-url") and value:
                self.urls.append(value)


CONTENT_TYPES = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",),
                 ".png": ("image/png",), ".json": ("application/json",)}


@pytest.mark.parametrize("page, assets", [
    ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css"}),
    ("/redoc", {"redoc.standalone.js"}),
])
async def test_docs_pages_load_only_local_files(client, page, assets):
    r = await client.get(page)  # no key needed
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "http://" not in html and "https://" not in html and "//" + "cdn" not in html  # nothing from elsewhere
    parser = _Assets()
    parser.feed(html)
    urls = parser.urls + re.findall(r"url: '([^']+)'", html)  # Swagger UI's spec URL is in its script
    assert {u.rsplit("/", 1)[-1] for u in urls} >= assets | {"openapi.json"}
    for url in urls:
        assert url.startswith("/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rfind("."):]
        assert asset.headers["content-type"].split(";")[0] in CONTENT_TYPES[suffix], (url, asset.headers["content-type"])
        assert len(asset.content) > 1000 or suffix == ".png", url


async def test_docs_assets_are_the_real_bundles(client):
    js = (await client.get("/docs/assets/swagger-ui-bundle.js")).text
    assert "SwaggerUIBundle" in js
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.', js)
    assert version and int(version.group(1)) >= 5  # Swagger UI 5 renders OpenAPI 3.1 (FastAPI's)
    assert "Redoc" in (await client.get("/docs/assets/redoc.standalone.js")).text
    assert_problem(await client.get("/docs/assets/no-such-file.js"), 404)
    swagger = (await client.get("/docs")).text
    assert '"persistAuthorization": true' in swagger  # the key given to Authorize survives a reload
