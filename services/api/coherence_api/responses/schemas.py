"""The shape of a responses batch, in one place.

The published schema (`ResponsesBatch`, in the OpenAPI document) is these models; the fast
validator (`validation`, after `parsing`) checks the same fields and limits, read from here, and
a property test holds the two to accepting and refusing the same batches. Unknown fields are
refused, as everywhere else in the API.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

Value = int | None

MAX_RESPONDENT_ID_LENGTH = 255
#: At least one character that is not white space.
RESPONDENT_PATTERN = r"\S"


class ResponseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    respondent: str = Field(
        min_length=1,
        max_length=MAX_RESPONDENT_ID_LENGTH,
        pattern=RESPONDENT_PATTERN,
        description="The sender's id for the person. Stored only as a keyed hash; once per batch.",
    )
    unit: str = Field(description="The person's home unit (external id, in the round).")
    answers: dict[str, Value] | None = Field(
        default=None, description="Items asked once: item key → value, null = don't know."
    )
    about: dict[str, dict[str, Value]] | None = Field(
        default=None,
        description="Items asked per target unit: target external id → item key → value. "
        "Include the home unit for internal ties.",
    )


class ResponsesBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    responses: list[ResponseIn]


#: The fields of a batch and of one response: anything else is an unknown field.
BATCH_FIELDS = frozenset(ResponsesBatch.model_fields)
RESPONSE_FIELDS = frozenset(ResponseIn.model_fields)


class ResponsesAccepted(BaseModel):
    accepted: int = Field(description="Responses in the batch.")
    created: int = Field(description="Respondents new to the round.")
    replaced: int = Field(description="Respondents whose earlier submission was replaced.")
    input_version: int = Field(description="The round's input version after this batch.")
