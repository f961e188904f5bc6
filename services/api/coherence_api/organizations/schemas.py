from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from coherence_api.api_keys.schemas import ApiKeyCreated


class OrganizationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    min_group_size: int = Field(
        default=5, ge=3, le=1000, description="Smallest group any published number may describe."
    )
    weak_below: float = Field(default=3.5, ge=0, description="Tie index below this is `weak`.")
    strong_above: float = Field(default=4.0, ge=0, description="Tie index above this is `strong`.")

    @model_validator(mode="after")
    def _bands(self) -> OrganizationCreate:
        if self.weak_below > self.strong_above:
            raise ValueError("weak_below must not exceed strong_above")
        return self


class OrganizationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    min_group_size: int
    weak_below: float
    strong_above: float
    created_at: datetime


class OrganizationCreated(OrganizationOut):
    api_key: ApiKeyCreated = Field(description="The organisation's first admin key, shown once.")
