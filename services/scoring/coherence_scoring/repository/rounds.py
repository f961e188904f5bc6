"""A round's scoring state and its scoring runs; the per-round lock."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from coherence_core.db.repository import ConnectionRepository
from coherence_core.lifecycle import RoundStatus, ScoringEvent, ScoringStatus, scoring_status_sql

_STATE = """
SELECT r.input_version, r.scored_version, r.instrument, r.status,
       o.min_group_size, o.weak_below, o.strong_above,
       (SELECT s.settings FROM scoring_run s WHERE s.round_id = r.id AND s.status = $3
         ORDER BY s.id DESC LIMIT 1) AS last_settings
FROM round r JOIN organization o ON o.id = r.organization_id
WHERE r.id = $1 AND r.organization_id = $2
"""


def round_lock_key(round_id: uuid.UUID) -> int:
    """A signed 64-bit advisory-lock key for the round."""
    return int.from_bytes(round_id.bytes[:8], "big", signed=True)


def _json(value: Any) -> Any:
    """jsonb as the connection decodes it: already decoded by the SQLAlchemy pool's codec."""
    return json.loads(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class ScoringState:
    """What decides whether and how a round is scored."""

    status: RoundStatus
    input_version: int
    scored_version: int | None
    instrument: dict[str, Any]
    min_group_size: int
    weak_below: float
    strong_above: float
    #: the settings fingerprint of the round's last successful run
    last_settings: dict[str, Any] | None


class RoundRepository(ConnectionRepository):
    async def try_lock(self, *, round_id: uuid.UUID) -> bool:
        """The round's session-level lock: one scoring of a round at a time."""
        locked = await self.connection.fetchval(
            "SELECT pg_try_advisory_lock($1)", round_lock_key(round_id)
        )
        return bool(locked)

    async def unlock(self, *, round_id: uuid.UUID) -> None:
        await self.connection.fetchval("SELECT pg_advisory_unlock($1)", round_lock_key(round_id))

    async def state(
        self, *, round_id: uuid.UUID, organization_id: uuid.UUID
    ) -> ScoringState | None:
        row = await self.connection.fetchrow(
            _STATE, round_id, organization_id, ScoringStatus.SCORED.value
        )
        if row is None:
            return None
        return ScoringState(
            status=RoundStatus(row["status"]),
            input_version=row["input_version"],
            scored_version=row["scored_version"],
            instrument=_json(row["instrument"]),
            min_group_size=row["min_group_size"],
            weak_below=row["weak_below"],
            strong_above=row["strong_above"],
            last_settings=_json(row["last_settings"]),
        )

    async def mark_current(self, *, round_id: uuid.UUID) -> None:
        """The round's results are for its current input already."""
        await self.connection.execute(
            f"UPDATE round SET scoring_status = {scoring_status_sql(ScoringEvent.SCORED)} "
            "WHERE id = $1 AND scored_version = input_version",
            round_id,
        )

    async def start_run(
        self,
        *,
        organization_id: uuid.UUID,
        round_id: uuid.UUID,
        input_version: int,
        method_version: str,
        settings: dict[str, Any],
    ) -> int:
        """A new scoring run, and the round marked running; the run's id."""
        run_id: int = await self.connection.fetchval(
            "INSERT INTO scoring_run (organization_id, round_id, input_version, method_version, "
            "settings, status, started_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6, now()) "
            "RETURNING id",
            organization_id,
            round_id,
            input_version,
            method_version,
            json.dumps(settings),
            ScoringStatus.RUNNING.value,
        )
        await self.connection.execute(
            f"UPDATE round SET scoring_status = {scoring_status_sql(ScoringEvent.STARTED)} "
            "WHERE id = $1",
            round_id,
        )
        return run_id

    async def finish_run(
        self, *, round_id: uuid.UUID, run_id: int, input_version: int, timings: dict[str, float]
    ) -> None:
        """The round's results are now the run's, made from `input_version`: scored, or pending
        again when the input moved on while the run computed."""
        await self.connection.execute(
            "UPDATE round SET scored_version = $2, scored_at = now(), scoring_error = NULL, "
            f"scoring_status = CASE WHEN input_version = $2 "
            f"THEN {scoring_status_sql(ScoringEvent.SCORED)} "
            f"ELSE {scoring_status_sql(ScoringEvent.OUTDATED)} END "
            "WHERE id = $1",
            round_id,
            input_version,
        )
        await self.connection.execute(
            "UPDATE scoring_run SET status = $4, finished_at = now(), "
            "input_version = $2, timings = $3::jsonb WHERE id = $1",
            run_id,
            input_version,
            json.dumps(timings),
            ScoringStatus.SCORED.value,
        )

    async def fail_run(self, *, round_id: uuid.UUID, run_id: int, error: str) -> None:
        await self.connection.execute(
            f"UPDATE round SET scoring_status = {scoring_status_sql(ScoringEvent.FAILED)}, "
            "scoring_error = $2 WHERE id = $1",
            round_id,
            error,
        )
        await self.connection.execute(
            "UPDATE scoring_run SET status = $3, finished_at = now(), error = $2 WHERE id = $1",
            run_id,
            error,
            ScoringStatus.FAILED.value,
        )
