"""The documented shape of a responses batch (the body is parsed and validated by `validation`)."""

from __future__ import annotations

from pydantic import BaseModel, Field

Value = int | None


class ResponseIn(BaseModel):
    respondent: str = Field(
        min_length=1,
        max_length=255,
        description="The sender's id for the person. Stored only as a keyed hash.",
    )
    unit: str = Field(description="The person's home unit (external id, in the round).")
    answers: dict[str, Value] = Field(
        default_factory=dict, description="Items asked once: item key → value, null = don't know."
    )
    about: dict[str, dict[str, Value]] = Field(
        default_factory=dict,
        description="Items asked per target unit: target external id → item key → value. "
        "Include the home unit for internal ties.",
    )


class ResponsesBatch(BaseModel):
    responses: list[ResponseIn]


class ResponsesAccepted(BaseModel):
    accepted: int = Field(description="Responses in the batch.")
    created: int = Field(description="Respondents new to the round.")
    replaced: int = Field(description="Respondents whose earlier submission was replaced.")
    input_version: int = Field(description="The round's input version after this batch.")
