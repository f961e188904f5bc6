from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

EXTERNAL_ID = Field(min_length=1, max_length=200, description="The HR system's id for the unit.")
MAX_UNITS_PER_REQUEST = 20_000


class UnitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: str = EXTERNAL_ID
    name: str = Field(min_length=1, max_length=500)
    parent_external_id: str | None = Field(default=None, min_length=1, max_length=200)
    headcount: int | None = Field(default=None, ge=0, le=10_000_000)


class UnitsUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    units: list[UnitIn] = Field(max_length=MAX_UNITS_PER_REQUEST)


class UnitsUpserted(BaseModel):
    created: int
    updated: int
    unchanged: int


class UnitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    external_id: str
    name: str
    parent_external_id: str | None
    headcount: int | None
