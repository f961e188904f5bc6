"""Accepting a batch: one transaction, respondents upserted, answers replaced by COPY.

The round row is only locked by the final `UPDATE … WHERE status = 'open'`, so concurrent batches
for one round overlap until their last statement, and a batch racing a close gets a 409.
"""

from __future__ import annotations

import io
import uuid

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from coherence_api.errors import Conflict, InvalidInput, NotFound
from coherence_api.responses.copy import COLUMNS, encode_answers
from coherence_api.responses.schemas import ResponsesAccepted
from coherence_api.responses.validation import RawResponse, RoundContext, validate_batch
from coherence_core.db.bulk import copy_to_table, raw_connection
from coherence_core.db.models import Round, RoundUnit
from coherence_core.instruments import InstrumentDefinition
from coherence_core.jobs import record_score_round
from coherence_core.security import RespondentHasher

_UPSERT_RESPONDENTS = """
INSERT INTO respondent (organization_id, round_id, respondent_hash, unit_idx, submitted_at)
SELECT $1, $2, h, u, now() FROM unnest($3::bytea[], $4::int[]) AS t(h, u)
ON CONFLICT (round_id, respondent_hash)
DO UPDATE SET unit_idx = EXCLUDED.unit_idx, submitted_at = EXCLUDED.submitted_at
RETURNING id, (xmax = 0) AS created
"""


_CONTEXTS: dict[uuid.UUID, RoundContext] = {}
_CONTEXTS_MAX = 256


async def round_context(session: AsyncSession, row: Round) -> RoundContext:
    """The round's validation context; cached, since a round's instrument and units are frozen."""
    context = _CONTEXTS.get(row.id)
    if context is None:
        units = (
            await session.scalars(
                select(RoundUnit.external_id)
                .where(RoundUnit.round_id == row.id)
                .order_by(RoundUnit.idx)
            )
        ).all()
        context = RoundContext.build(InstrumentDefinition.model_validate(row.instrument), units)
        if len(_CONTEXTS) >= _CONTEXTS_MAX:
            _CONTEXTS.pop(next(iter(_CONTEXTS)))
        _CONTEXTS[row.id] = context
    return context


async def accept_batch(
    session: AsyncSession,
    *,
    round_id: uuid.UUID,
    raws: list[RawResponse],
    hasher: RespondentHasher,
    rescore_delay: float,
) -> ResponsesAccepted:
    row = await session.scalar(select(Round).where(Round.id == round_id))
    if row is None:
        raise NotFound(f"No round {round_id}.")
    if row.status != "open":
        raise Conflict(f"Round {round_id} is closed; it accepts no more responses.")
    batch, errors = validate_batch(raws, await round_context(session, row))
    if batch is None:
        raise InvalidInput(
            f"{len(errors)} error(s) in the batch; nothing was stored", errors=errors
        )
    submissions = batch.submissions
    organization_id = row.organization_id
    key = hasher.organization_key(organization_id)
    connection = await raw_connection(session)
    created = 0
    if submissions:
        returned = await connection.fetch(
            _UPSERT_RESPONDENTS,
            organization_id,
            round_id,
            [hasher.hash(key, s.respondent) for s in submissions],
            [s.unit_idx for s in submissions],
        )
        ids = [r["id"] for r in returned]
        created = sum(1 for r in returned if r["created"])
        replaced_ids = [r["id"] for r in returned if not r["created"]]
        if replaced_ids:
            await connection.execute(
                "DELETE FROM answer WHERE round_id = $1 AND respondent_id = ANY($2::bigint[])",
                round_id,
                replaced_ids,
            )
        if len(batch.answers):
            payload = encode_answers(
                batch.answers,
                np.asarray(ids, dtype=np.int64),
                organization_id=organization_id,
                round_id=round_id,
            )
            await copy_to_table(
                connection, "answer", source=io.BytesIO(payload), columns=COLUMNS, format="binary"
            )
    version = (
        await session.execute(
            text(
                "UPDATE round SET input_version = input_version + 1, "
                "respondents = respondents + :created, scoring_status = CASE "
                "WHEN scoring_status = 'running' THEN 'running' ELSE 'pending' END "
                "WHERE id = :id AND status = 'open' RETURNING input_version"
            ),
            {"id": round_id, "created": created},
        )
    ).scalar_one_or_none()
    if version is None:
        raise Conflict(f"Round {round_id} was closed while this batch was being stored.")
    await record_score_round(
        session, organization_id=organization_id, round_id=round_id, delay_seconds=rescore_delay
    )
    return ResponsesAccepted(
        accepted=len(submissions),
        created=created,
        replaced=len(submissions) - created,
        input_version=version,
    )
