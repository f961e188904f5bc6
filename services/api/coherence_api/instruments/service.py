"""The instrument catalogue of an organisation: the built-in ones plus its own."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from coherence_api.errors import Conflict, NotFound
from coherence_api.instruments.repository import InstrumentRepository
from coherence_core.instruments import (
    BUILTIN_KEYS,
    InstrumentDefinition,
    builtin_instrument,
    builtin_instruments,
)


async def get(session: AsyncSession, *, key: str) -> InstrumentDefinition:
    if key in BUILTIN_KEYS:
        return builtin_instrument(key)
    row = await InstrumentRepository(session).get(key=key)
    if row is None:
        raise NotFound(f"No instrument '{key}'.")
    return InstrumentDefinition.model_validate(row.definition)


async def list_all(session: AsyncSession) -> list[InstrumentDefinition]:
    rows = await InstrumentRepository(session).all()
    return builtin_instruments() + [InstrumentDefinition.model_validate(r.definition) for r in rows]


async def create(
    session: AsyncSession, *, organization_id: uuid.UUID, definition: InstrumentDefinition
) -> InstrumentDefinition:
    if definition.key in BUILTIN_KEYS:
        raise Conflict(f"'{definition.key}' is a built-in instrument; choose another key.")
    try:
        await InstrumentRepository(session).add(
            organization_id=organization_id,
            key=definition.key,
            definition=definition.model_dump(mode="json"),
        )
    except IntegrityError:
        raise Conflict(
            f"An instrument '{definition.key}' exists already; instruments are immutable, "
            "so publish a changed one under a new key (e.g. with a version suffix)."
        ) from None
    return definition
