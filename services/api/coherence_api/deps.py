"""Request dependencies: the database session, the caller and their organisation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from coherence_api.api_keys.repository import ApiKeyRepository
from coherence_api.errors import Forbidden, Unauthorized
from coherence_api.scopes import ADMIN, RESPONSES_WRITE, RESULTS_READ
from coherence_api.state import AppState
from coherence_core.db.models import Organization
from coherence_core.db.tenancy import bind_organization, present_api_key, unscoped
from coherence_core.security import hash_api_key, tokens_match

_bearer = HTTPBearer(auto_error=False, description="An API key, or the operator token.")


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.coherence
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    """One session per request. Endpoints commit before they return (before the response)."""
    async with state.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


@dataclass(frozen=True)
class Caller:
    organization: Organization
    key_id: uuid.UUID
    scopes: frozenset[str]

    @property
    def organization_id(self) -> uuid.UUID:
        return self.organization.id


async def get_caller(session: SessionDep, credentials: Credentials) -> Caller:
    if credentials is None:
        raise Unauthorized("Send an API key as 'Authorization: Bearer <key>'.")
    key_hash = hash_api_key(credentials.credentials)
    unscoped(session, reason="API-key authentication: the organisation is not known yet")
    await present_api_key(session, key_hash)  # row-level security shows this one key
    row = await ApiKeyRepository(session).get_active_by_hash(key_hash=key_hash)
    await session.commit()  # the request's own transactions begin bound to the organisation
    if row is None:
        raise Unauthorized("The API key is not valid or has been revoked.")
    key, organization = row
    bind_organization(session, organization.id)
    return Caller(organization=organization, key_id=key.id, scopes=frozenset(key.scopes))


def require_scope(scope: str) -> Callable[..., Coroutine[Any, Any, Caller]]:
    async def dependency(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
        if scope not in caller.scopes and ADMIN not in caller.scopes:
            raise Forbidden(f"This API key lacks the '{scope}' scope.")
        return caller

    return dependency


#: Any valid key, whatever its scopes (reading the org chart, instruments and rounds).
AnyCaller = Annotated[Caller, Depends(get_caller)]
AdminCaller = Annotated[Caller, Depends(require_scope(ADMIN))]
WriterCaller = Annotated[Caller, Depends(require_scope(RESPONSES_WRITE))]
ReaderCaller = Annotated[Caller, Depends(require_scope(RESULTS_READ))]


async def require_operator(state: StateDep, credentials: Credentials) -> None:
    if credentials is None or not tokens_match(credentials.credentials, state.admin_token):
        raise Unauthorized("This endpoint takes the operator token (COHERENCE_ADMIN_TOKEN).")


OperatorDep = Annotated[None, Depends(require_operator)]
