from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from coherence_core.db.models import Round
from coherence_core.lifecycle import RoundStatus, ScoringStatus


class RoundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    instrument: str = Field(default="coherence-v1", min_length=1, max_length=64)
    units: list[str] | None = Field(
        default=None,
        max_length=20_000,
        description="External ids of the units in the round; every current unit when omitted.",
    )


class Scoring(BaseModel):
    status: ScoringStatus = Field(
        description="`pending`: changes not scored yet; `running`; `scored`: results are for "
        "`scored_version`; `failed`: see `error`."
    )
    scored_version: int | None
    scored_at: datetime | None
    error: str | None


class RoundOut(BaseModel):
    id: uuid.UUID
    name: str
    status: RoundStatus
    instrument: str
    respondents: int
    input_version: int = Field(description="Moves with every accepted change to the responses.")
    scoring: Scoring
    units: int = Field(description="Number of units frozen into the round.")
    created_at: datetime
    closed_at: datetime | None

    @classmethod
    def of(cls, row: Round, units: int) -> RoundOut:
        return cls(
            id=row.id,
            name=row.name,
            status=row.status,
            instrument=row.instrument_key,
            respondents=row.respondents,
            input_version=row.input_version,
            scoring=Scoring(
                status=row.scoring_status,
                scored_version=row.scored_version,
                scored_at=row.scored_at,
                error=row.scoring_error,
            ),
            units=units,
            created_at=row.created_at,
            closed_at=row.closed_at,
        )
