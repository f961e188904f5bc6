from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from coherence_api.scopes import SCOPES


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1, description=f"Any of {', '.join(SCOPES)}.")

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, scopes: list[str]) -> list[str]:
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            raise ValueError(f"unknown scope(s) {unknown}; use {list(SCOPES)}")
        return sorted(set(scopes))


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it.")
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None = None


class ApiKeyCreated(BaseModel):
    id: uuid.UUID
    name: str
    key: str = Field(description="The key itself. Shown once; only its hash is stored.")
    scopes: list[str]
