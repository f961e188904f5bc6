"""A round's published results: written per run by COPY, the summary switched to the run, the
rows of runs no reader follows any more deleted."""

from __future__ import annotations

import io
import uuid
from typing import Any

from coherence_core.db.bulk import copy_to_table
from coherence_core.db.repository import ConnectionRepository

#: The result tables, each keyed by (round, run).
RESULT_TABLES = ("unit_score", "tie_score", "unit_participation")
#: Every result row starts with these, before the engine's columns.
RUN_COLUMNS = ["organization_id", "round_id", "run_id"]

_UPSERT_SUMMARY = """
INSERT INTO round_summary (organization_id, round_id, run_id, input_version,
    method_version, scored_at, summary, preview)
VALUES ($1, $2, $3, $4, $5, now(), $6::jsonb, $7)
ON CONFLICT (round_id) DO UPDATE SET
    run_id = EXCLUDED.run_id, input_version = EXCLUDED.input_version,
    method_version = EXCLUDED.method_version, scored_at = EXCLUDED.scored_at,
    summary = EXCLUDED.summary, preview = EXCLUDED.preview
"""


class ResultRepository(ConnectionRepository):
    async def copy_rows(self, *, table: str, columns: list[str], csv: io.BytesIO) -> None:
        """COPY CSV rows (empty = null) of `columns` into the result `table`."""
        assert table in RESULT_TABLES, table
        await copy_to_table(
            self.connection, table, source=csv, columns=columns, format="csv", null=""
        )

    async def switch_summary(
        self,
        *,
        organization_id: uuid.UUID,
        round_id: uuid.UUID,
        run_id: int,
        input_version: int,
        method_version: str,
        summary: str,
        preview: bool,
    ) -> None:
        """Point the round's readers at the run (its summary: JSON text)."""
        await self.connection.execute(
            _UPSERT_SUMMARY,
            organization_id,
            round_id,
            run_id,
            input_version,
            method_version,
            summary,
            preview,
        )

    async def delete_stale_runs(self, *, round_id: uuid.UUID, run_id: int, kept_kind: str) -> None:
        """Delete the rows of the round's runs but `run_id` and those of `kept_kind`
        publications."""
        for table in RESULT_TABLES:
            await self.connection.execute(
                f"DELETE FROM {table} WHERE round_id = $1 AND run_id <> $2 AND run_id NOT IN "
                "(SELECT run_id FROM publication WHERE round_id = $1 AND kind = $3)",
                round_id,
                run_id,
                kept_kind,
            )

    async def published_rows(
        self, *, table: str, columns: list[str], round_id: uuid.UUID, run_id: int
    ) -> list[tuple[Any, ...]]:
        """A run's rows of a result `table`, as tuples of `columns`."""
        assert table in RESULT_TABLES, table
        rows = await self.connection.fetch(
            f"SELECT {', '.join(columns)} FROM {table} WHERE round_id = $1 AND run_id = $2",
            round_id,
            run_id,
        )
        return [tuple(r) for r in rows]
