"""Storing a batch: respondents upserted, their answers replaced by binary COPY, the round's
input version moved. Every statement runs in the batch's one transaction."""

from __future__ import annotations

import io
import uuid
from typing import Any

from sqlalchemy import literal_column, update

from coherence_api.responses.copy import COLUMNS
from coherence_core.db.bulk import copy_to_table, raw_connection
from coherence_core.db.models import Round
from coherence_core.db.repository import Repository
from coherence_core.lifecycle import RoundStatus, ScoringEvent, scoring_status_sql

_UPSERT_RESPONDENTS = """
INSERT INTO respondent (organization_id, round_id, respondent_hash, unit_idx, submitted_at)
SELECT $1, $2, h, u, now() FROM unnest($3::bytea[], $4::int[]) AS t(h, u)
ON CONFLICT (round_id, respondent_hash)
DO UPDATE SET unit_idx = EXCLUDED.unit_idx, submitted_at = EXCLUDED.submitted_at
RETURNING id, (xmax = 0) AS created
"""


class ResponseRepository(Repository):
    async def upsert_respondents(
        self,
        *,
        organization_id: uuid.UUID,
        round_id: uuid.UUID,
        hashes: list[bytes],
        unit_idx: list[int],
    ) -> list[Any]:
        """One record per respondent, in order: its `id`, and `created` (new to the round)."""
        connection = await raw_connection(self.session)
        records: list[Any] = await connection.fetch(
            _UPSERT_RESPONDENTS, organization_id, round_id, hashes, unit_idx
        )
        return records

    async def delete_answers(self, *, round_id: uuid.UUID, respondent_ids: list[int]) -> None:
        connection = await raw_connection(self.session)
        await connection.execute(
            "DELETE FROM answer WHERE round_id = $1 AND respondent_id = ANY($2::bigint[])",
            round_id,
            respondent_ids,
        )

    async def copy_answers(self, *, payload: bytes) -> None:
        """Binary COPY of `payload` (`responses.copy.encode_answers`) into `answer`."""
        connection = await raw_connection(self.session)
        await copy_to_table(
            connection, "answer", source=io.BytesIO(payload), columns=COLUMNS, format="binary"
        )

    async def record_input(self, *, round_id: uuid.UUID, created: int) -> int | None:
        """Move the open round's input version on (and its scoring status with it); the new
        version, or None when the round is not open any more. Locks the round row."""
        statement = (
            update(Round)
            .where(Round.id == round_id, Round.status == RoundStatus.OPEN)
            .values(
                input_version=Round.input_version + 1,
                respondents=Round.respondents + created,
                scoring_status=literal_column(scoring_status_sql(ScoringEvent.INPUT_CHANGED)),
            )
            .returning(Round.input_version)
            .execution_options(synchronize_session=False)
        )
        version: int | None = (await self.session.execute(statement)).scalar_one_or_none()
        return version
