"""Ops endpoints: liveness, readiness (database reachable), Prometheus metrics."""
from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.responses import Response

from app.core.db import get_engine
from app.core.errors import problem_response
from app.core.responses import json_response

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz():
    return json_response({"status": "ok"})


@router.get("/readyz", summary="Readiness: the database is reachable",
            responses={503: {"description": "`service_unavailable`: the database is unreachable; retry after `Retry-After`."}})
async def readyz():
    try:
        async with get_engine().connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return problem_response(503, "service_unavailable", f"Database unreachable: {type(exc).__name__}",
                                headers={"Retry-After": "5"})
    return json_response({"status": "ready", "database": get_engine().dialect.name})


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=True)
async def metrics():
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
