"""Writing a scoring result: the whole set for a round in one transaction, by COPY.

The new run's rows are copied in the same transaction that points `round_summary.run_id` at the
run and switches the round's `scored_version`, so readers see either the previous result set or
the new one, never a mix. The previous runs' rows are deleted afterwards (`delete_stale_runs`).
The columns are the engine's output schemas (`engine.types`), written in their order.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from typing import Any

import orjson
import polars as pl

from coherence_scoring.engine.types import (
    TIE_SCORES_SCHEMA,
    UNIT_PARTICIPATION_SCHEMA,
    UNIT_SCORES_SCHEMA,
    ScoringResult,
)
from coherence_scoring.repository.results import RUN_COLUMNS, ResultRepository

#: result table → the engine's schema of its rows
TABLE_SCHEMAS: dict[str, dict[str, Any]] = {
    "unit_score": UNIT_SCORES_SCHEMA,
    "tie_score": TIE_SCORES_SCHEMA,
    "unit_participation": UNIT_PARTICIPATION_SCHEMA,
}


def _csv(frame: pl.DataFrame) -> io.BytesIO:
    buffer = io.BytesIO()
    # polars writes floats in shortest round-trip form, so values arrive bit-identical.
    frame.write_csv(buffer, include_header=False, null_value="")
    buffer.seek(0)
    return buffer


async def write_result(
    connection: Any,
    *,
    organization_id: uuid.UUID,
    round_id: uuid.UUID,
    run_id: int,
    input_version: int,
    method_version: str,
    result: ScoringResult,
) -> None:
    """Write the run's published results; call inside the switching transaction."""
    results = ResultRepository(connection)
    frames = {
        "unit_score": result.unit_scores,
        "tie_score": result.tie_scores,
        "unit_participation": result.participation,
    }
    for table, frame in frames.items():
        if frame.is_empty():
            continue
        full = frame.select(
            pl.lit(str(organization_id)).alias("organization_id"),
            pl.lit(str(round_id)).alias("round_id"),
            pl.lit(run_id, dtype=pl.Int64).alias("run_id"),
            *TABLE_SCHEMAS[table],
        )
        # Encoding is CPU work: off the event loop, like the scoring itself.
        csv = await asyncio.to_thread(_csv, full)
        await results.copy_rows(table=table, columns=[*RUN_COLUMNS, *TABLE_SCHEMAS[table]], csv=csv)
    await results.switch_summary(
        organization_id=organization_id,
        round_id=round_id,
        run_id=run_id,
        input_version=input_version,
        method_version=method_version,
        summary=orjson.dumps(result.summary, option=orjson.OPT_SERIALIZE_NUMPY).decode(),
        preview=result.preview,
    )
