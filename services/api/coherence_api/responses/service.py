"""Accepting a batch: validated whole against the round, then stored in one transaction.

The round row is only locked by the final input-version update (which also checks the round is
still open), so concurrent batches for one round overlap until their last statement, and a batch
racing a close gets a 409.
"""

from __future__ import annotations

import uuid

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from coherence_api.errors import Conflict, InvalidInput
from coherence_api.responses.copy import encode_answers
from coherence_api.responses.repository import ResponseRepository
from coherence_api.responses.schemas import ResponsesAccepted
from coherence_api.responses.validation import RawResponse, RoundContext, validate_batch
from coherence_api.rounds import service as rounds
from coherence_api.rounds.repository import RoundRepository
from coherence_core.db.models import Round
from coherence_core.instruments import InstrumentDefinition
from coherence_core.lifecycle import accepts_input
from coherence_core.outbox.repository import OutboxRepository
from coherence_core.security import RespondentHasher

_CONTEXTS: dict[uuid.UUID, RoundContext] = {}
_CONTEXTS_MAX = 256


async def round_context(session: AsyncSession, row: Round) -> RoundContext:
    """The round's validation context; cached, since a round's instrument and units are frozen."""
    context = _CONTEXTS.get(row.id)
    if context is None:
        units = await RoundRepository(session).unit_external_ids(round_id=row.id)
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
    row = await rounds.get(session, round_id=round_id)
    if not accepts_input(row.status):
        raise Conflict(f"Round {round_id} is closed; it accepts no more responses.")
    batch, errors = validate_batch(raws, await round_context(session, row))
    if batch is None:
        raise InvalidInput(
            f"{len(errors)} error(s) in the batch; nothing was stored", errors=errors
        )
    submissions = batch.submissions
    organization_id = row.organization_id
    key = hasher.organization_key(organization_id)
    responses = ResponseRepository(session)
    created = 0
    if submissions:
        returned = await responses.upsert_respondents(
            organization_id=organization_id,
            round_id=round_id,
            hashes=[hasher.hash(key, s.respondent) for s in submissions],
            unit_idx=[s.unit_idx for s in submissions],
        )
        created = sum(1 for r in returned if r["created"])
        replaced = [r["id"] for r in returned if not r["created"]]
        if replaced:
            await responses.delete_answers(round_id=round_id, respondent_ids=replaced)
        if len(batch.answers):
            ids = np.asarray([r["id"] for r in returned], dtype=np.int64)
            payload = encode_answers(
                batch.answers, ids, organization_id=organization_id, round_id=round_id
            )
            await responses.copy_answers(payload=payload)
    version = await responses.record_input(round_id=round_id, created=created)
    if version is None:
        raise Conflict(f"Round {round_id} was closed while this batch was being stored.")
    await OutboxRepository(session).record_score_round(
        organization_id=organization_id, round_id=round_id, delay_seconds=rescore_delay
    )
    return ResponsesAccepted(
        accepted=len(submissions),
        created=created,
        replaced=len(submissions) - created,
        input_version=version,
    )
