"""An organisation's custom instruments (the built-in ones ship as data files)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from coherence_core.db.models import Instrument
from coherence_core.db.repository import Repository


class InstrumentRepository(Repository):
    async def get(self, *, key: str) -> Instrument | None:
        return await self.session.scalar(select(Instrument).where(Instrument.key == key))

    async def all(self) -> Sequence[Instrument]:
        return (await self.session.scalars(select(Instrument).order_by(Instrument.key))).all()

    async def add(
        self, *, organization_id: uuid.UUID, key: str, definition: dict[str, Any]
    ) -> None:
        """Raises `IntegrityError` when the organisation has an instrument `key` already."""
        self.session.add(
            Instrument(organization_id=organization_id, key=key, definition=definition)
        )
        await self.session.flush()
