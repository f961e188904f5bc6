from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from coherence_api.api_keys import service
from coherence_api.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from coherence_api.deps import AdminCaller, SessionDep
from coherence_api.idempotency.dependencies import IdempotencyDep
from coherence_api.pagination import Page, PagingDep
from coherence_api.transactions import WriteRoute

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"], route_class=WriteRoute)


@router.post("", status_code=201, response_model=ApiKeyCreated, summary="Create an API key")
async def create_api_key(
    body: ApiKeyCreate, caller: AdminCaller, session: SessionDep, idempotency: IdempotencyDep
) -> ApiKeyCreated:
    """Creates a key for the caller's organisation. The key is in the response once, never again."""
    return await service.create(
        session, organization_id=caller.organization_id, name=body.name, scopes=body.scopes
    )


@router.get("", response_model=Page[ApiKeyOut], summary="List API keys")
async def list_api_keys(
    caller: AdminCaller, session: SessionDep, paging: PagingDep
) -> Page[ApiKeyOut]:
    rows = await service.list_page(session, page=paging.asked)
    return paging.page([ApiKeyOut.model_validate(r) for r in rows.items], rows.next_cursor)


@router.delete("/{key_id}", status_code=204, response_class=Response, summary="Revoke an API key")
async def revoke_api_key(
    key_id: uuid.UUID, caller: AdminCaller, session: SessionDep, idempotency: IdempotencyDep
) -> None:
    await service.revoke(session, key_id=key_id)
