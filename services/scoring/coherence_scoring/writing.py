"""Writing a scoring result: the whole set for a round in one transaction, by COPY.

The new run's rows are copied in the same transaction that points `round_summary.run_id` at the
run and switches the round's `scored_version`, so readers see either the previous result set or
the new one, never a mix. The previous runs' rows are deleted afterwards (`delete_stale_runs`).
"""

from __future__ import annotations

import asyncio
import io
import uuid
from typing import Any

import orjson
import polars as pl

from coherence_core.db.bulk import copy_to_table
from coherence_scoring.engine.types import ScoringResult

UNIT_SCORE_COLUMNS = [
    "unit", "scale", "measure", "perspective", "rollup", "n", "mean", "sd", "ci_low", "ci_high",
    "rwg", "band", "low_agreement", "suppressed", "suppression_reason",
]  # fmt: skip
TIE_SCORE_COLUMNS = [
    "from_unit", "to_unit", "scale", "measure", "n", "mean", "sd", "ci_low", "ci_high", "band",
    "suppressed", "suppression_reason",
]  # fmt: skip
PARTICIPATION_COLUMNS = [
    "unit", "rollup", "respondents", "headcount", "response_rate", "suppressed",
    "suppression_reason",
]  # fmt: skip

RESULT_TABLES = ("unit_score", "tie_score", "unit_participation")


async def _copy_frame(
    connection: Any,
    table: str,
    frame: pl.DataFrame,
    columns: list[str],
    *,
    organization_id: uuid.UUID,
    round_id: uuid.UUID,
    run_id: int,
) -> None:
    if frame.is_empty():
        return
    full = frame.select(
        pl.lit(str(organization_id)).alias("organization_id"),
        pl.lit(str(round_id)).alias("round_id"),
        pl.lit(run_id, dtype=pl.Int64).alias("run_id"),
        *columns,
    )
    # Encoding is CPU work: off the event loop, like the scoring itself.
    buffer = await asyncio.to_thread(_csv, full)
    await copy_to_table(
        connection, table, source=buffer, columns=full.columns, format="csv", null=""
    )


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
    for table, frame, columns in (
        ("unit_score", result.unit_scores, UNIT_SCORE_COLUMNS),
        ("tie_score", result.tie_scores, TIE_SCORE_COLUMNS),
        ("unit_participation", result.participation, PARTICIPATION_COLUMNS),
    ):
        await _copy_frame(
            connection,
            table,
            frame,
            columns,
            organization_id=organization_id,
            round_id=round_id,
            run_id=run_id,
        )
    await connection.execute(
        """
        INSERT INTO round_summary (organization_id, round_id, run_id, input_version,
            method_version, scored_at, summary, preview)
        VALUES ($1, $2, $3, $4, $5, now(), $6::jsonb, $7)
        ON CONFLICT (round_id) DO UPDATE SET
            run_id = EXCLUDED.run_id, input_version = EXCLUDED.input_version,
            method_version = EXCLUDED.method_version, scored_at = EXCLUDED.scored_at,
            summary = EXCLUDED.summary, preview = EXCLUDED.preview
        """,
        organization_id,
        round_id,
        run_id,
        input_version,
        method_version,
        orjson.dumps(result.summary, option=orjson.OPT_SERIALIZE_NUMPY).decode(),
        result.preview,
    )


async def delete_stale_runs(connection: Any, *, round_id: uuid.UUID, run_id: int) -> None:
    """Remove result rows of the round's earlier runs that no reader follows any more. A final
    publication's rows stay: the ledger audits later publications against them."""
    for table in RESULT_TABLES:
        await connection.execute(
            f"DELETE FROM {table} WHERE round_id = $1 AND run_id <> $2 AND run_id NOT IN "
            "(SELECT run_id FROM publication WHERE round_id = $1 AND kind = 'final')",
            round_id,
            run_id,
        )
