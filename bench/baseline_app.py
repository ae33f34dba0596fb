"""The bare FastAPI baseline for bench_http.py: a fixed ~2 KB JSON document, encoded once."""
import orjson
from fastapi import FastAPI
from starlette.responses import Response

DOCUMENT = orjson.dumps({"data": [
    {"id": f"prod_{i:04d}", "handle": f"bench-product-{i}", "title": f"Bench product {i}", "status": "active",
     "category": "fashion/tees", "variants": [{"sku": f"SKU-{i:04d}-{s}", "options": {"size": s}} for s in ("S", "M", "L")]}
    for i in range(8)], "next_cursor": None})
HEALTH = orjson.dumps({"status": "ok"})

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/bench")
async def bench() -> Response:
    return Response(DOCUMENT, media_type="application/json")


@app.get("/healthz")
async def healthz() -> Response:
    return Response(HEALTH, media_type="application/json")
