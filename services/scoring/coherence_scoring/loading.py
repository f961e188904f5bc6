"""Loading a round's inputs for the engine: binary COPY straight into numpy, then polars.

Answers are read as fixed-width binary COPY rows (nulls mapped to sentinels in the query,
`repository.inputs`), so the whole result parses with one `numpy.frombuffer` — close to the cost
of the COPY itself.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from coherence_core.db.models.surveys import NO_TARGET
from coherence_scoring.engine.types import ANSWERS_SCHEMA, RESPONDENTS_SCHEMA, UNITS_SCHEMA
from coherence_scoring.repository.inputs import NULL_VALUE, InputRepository

_HEADER = 11 + 4 + 4  # signature, flags, header-extension length (always 0 from Postgres)

_ANSWER_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("l1", ">i4"),
        ("respondent", ">i8"),
        ("l2", ">i4"),
        ("target", ">i4"),
        ("l3", ">i4"),
        ("item", ">i2"),
        ("l4", ">i4"),
        ("value", ">i2"),
    ]
)
_RESPONDENT_ROW = np.dtype(
    [("fields", ">i2"), ("l1", ">i4"), ("respondent", ">i8"), ("l2", ">i4"), ("unit", ">i4")]
)


def parse_binary_copy(data: bytes, row: np.dtype) -> np.ndarray:
    """Rows of a binary COPY whose columns are all fixed-width and never null."""
    body = memoryview(data)[_HEADER : len(data) - 2]  # the trailer is a 2-byte -1
    if len(body) % row.itemsize:
        raise ValueError("binary COPY rows are not of the expected width")
    return np.frombuffer(body, dtype=row)


def answers_frame(data: bytes) -> pl.DataFrame:
    rows = parse_binary_copy(data, _ANSWER_ROW)
    frame = pl.DataFrame(
        {
            "respondent": rows["respondent"].astype(np.int64),
            "target": rows["target"].astype(np.int32),
            "item": rows["item"].astype(np.int16),
            "value": rows["value"].astype(np.int16),
        },
        schema=ANSWERS_SCHEMA,
    )
    return frame.with_columns(
        pl.col("target").replace(NO_TARGET, None),
        pl.col("value").replace(NULL_VALUE, None),
    )


def respondents_frame(data: bytes) -> pl.DataFrame:
    rows = parse_binary_copy(data, _RESPONDENT_ROW)
    return pl.DataFrame(
        {"respondent": rows["respondent"].astype(np.int64), "unit": rows["unit"].astype(np.int32)},
        schema=RESPONDENTS_SCHEMA,
    )


@dataclass(frozen=True)
class RoundInputs:
    input_version: int
    units: pl.DataFrame
    respondents: pl.DataFrame
    answers: pl.DataFrame


async def load_round(connection: Any, round_id: uuid.UUID) -> RoundInputs:
    """Everything the engine needs, read in one REPEATABLE READ snapshot."""
    inputs = InputRepository(connection)
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        version = await inputs.input_version(round_id=round_id)
        unit_rows = await inputs.units(round_id=round_id)
        respondents = await inputs.copy_respondents(round_id=round_id)
        answers = await inputs.copy_answers(round_id=round_id)
    units = pl.DataFrame(
        {
            "unit": [r["idx"] for r in unit_rows],
            "external_id": [r["external_id"] for r in unit_rows],
            "parent": [r["parent_idx"] for r in unit_rows],
            "headcount": [r["headcount"] for r in unit_rows],
        },
        schema=UNITS_SCHEMA,
    )
    return RoundInputs(
        input_version=version,
        units=units,
        respondents=respondents_frame(respondents),
        # Parsing tens of MiB is CPU work: off the event loop, like the scoring itself.
        answers=await asyncio.to_thread(answers_frame, answers),
    )
