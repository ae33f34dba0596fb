from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.auth import service
from app.auth.models import ApiKey
from app.auth.principal import ADMIN, Principal
from app.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from app.core.db import get_session
from app.core.idempotency import mark_secret
from app.core.pagination import PageParams, apply_page, page_params, page_result
from app.core.responses import created, json_response, rfc3339

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"])
Session = Annotated[AsyncSession, Depends(get_session)]


def render(key: ApiKey) -> dict:
    return {
        "id": key.id, "object": "api_key", "name": key.name, "role": key.role,
        "channel": key.channel_code, "location": key.location_code, "prefix": key.prefix,
        "rate_limit": key.rate_limit, "created_at": rfc3339(key.created_at),
        "last_used_at": rfc3339(key.last_used_at), "revoked_at": rfc3339(key.revoked_at),
    }


@router.post("", status_code=201, response_model=ApiKeyCreated, summary="Create an API key (the secret is shown once)")
async def create_key(body: ApiKeyCreate, request: Request, session: Session, _: Principal = Depends(ADMIN)):
    key, secret = await service.create_api_key(session, **body.model_dump())
    mark_secret(request, "secret")  # a replay of this answer (same Idempotency-Key) shows "secret": null
    return created(render(key) | {"secret": secret})


@router.get("", response_model=dict, summary="List API keys")
async def list_keys(session: Session, page: PageParams = Depends(page_params), _: Principal = Depends(ADMIN)):
    rows = (await session.execute(apply_page(select(ApiKey), ApiKey.id, page))).scalars().all()
    return json_response(page_result(list(rows), page, render))


@router.get("/{key_id}", response_model=ApiKeyOut, summary="Get an API key")
async def get_key(key_id: str, session: Session, _: Principal = Depends(ADMIN)):
    return json_response(render(await service.get_api_key(session, key_id)))


@router.delete("/{key_id}", status_code=204, summary="Revoke an API key (effective at once)")
async def revoke_key(key_id: str, session: Session, _: Principal = Depends(ADMIN)):
    await service.revoke_api_key(session, key_id)
    return Response(status_code=204)
