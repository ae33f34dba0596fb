"""The OpenAPI document declares the problem+json answers of every operation and the rules
that pydantic cannot enforce on its own (one of sku/gtin, one of delta/set, from ≠ to)."""
import pytest

from app.core.schemas import Problem
from tests.helpers import assert_problem

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
            if path.startswith("/v1/"):
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
