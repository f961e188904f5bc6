"""Loading a round's inputs for the engine: binary COPY straight into numpy, then polars.

Answers are read as fixed-width binary COPY rows (nulls mapped to sentinels in the query), so the
whole result parses with one `numpy.frombuffer` — close to the cost of the COPY itself.
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

_HEADER = 11 + 4 + 4  # signature, flags, header-extension length (always 0 from Postgres)
_NULL_VALUE = -32768

ANSWERS_QUERY = (
    "SELECT respondent_id, target_idx, item_idx, COALESCE(value, -32768)::int2 "
    "FROM answer WHERE round_id = $1"
)
RESPONDENTS_QUERY = "SELECT id, unit_idx FROM respondent WHERE round_id = $1"

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


async def copy_query(connection: Any, query: str, *args: Any) -> bytes:
    """`COPY (query) TO STDOUT (FORMAT binary)`, collected in memory."""
    chunks: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        chunks.append(chunk)

    await connection.copy_from_query(query, *args, output=sink, format="binary")
    return b"".join(chunks)


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
        pl.col("value").replace(_NULL_VALUE, None),
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
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        version = await connection.fetchval(
            "SELECT input_version FROM round WHERE id = $1", round_id
        )
        unit_rows = await connection.fetch(
            "SELECT idx, external_id, parent_idx, headcount FROM round_unit "
            "WHERE round_id = $1 ORDER BY idx",
            round_id,
        )
        respondents = await copy_query(connection, RESPONDENTS_QUERY, round_id)
        answers = await copy_query(connection, ANSWERS_QUERY, round_id)
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
