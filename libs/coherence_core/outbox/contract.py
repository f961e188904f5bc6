"""The job contract between the API and the scoring worker: job names, payloads and ids."""

from __future__ import annotations

import uuid

from coherence_core.db.models import Outbox

SCORE_ROUND = "score_round"
DEFAULT_QUEUE = "coherence:queue"


def score_round_dedupe_key(round_id: uuid.UUID) -> str:
    """Pending requests to score one round share this key, so they collapse into one job."""
    return f"{SCORE_ROUND}:{round_id}"


def score_round_payload(*, organization_id: uuid.UUID, round_id: uuid.UUID) -> dict[str, str]:
    """The keyword arguments `score_round` is called with."""
    return {"round_id": str(round_id), "organization_id": str(organization_id)}


def job_id(row: Outbox) -> str:
    """Stable per outbox row, and unique beyond this database (the dedupe key names the round)."""
    return f"{row.dedupe_key}:{row.id}"
