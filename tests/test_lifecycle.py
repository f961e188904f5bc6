"""The round lifecycle table, and its SQL rendering evaluated by Postgres against the table."""

from __future__ import annotations

import itertools

import asyncpg

from coherence_core.db.session import asyncpg_dsn
from coherence_core.lifecycle import (
    RoundStatus,
    ScoringEvent,
    ScoringStatus,
    accepts_input,
    can_become,
    scoring_status_after,
    scoring_status_sql,
)


def test_a_round_closes_once_and_never_reopens() -> None:
    assert can_become(RoundStatus.OPEN, RoundStatus.CLOSED)
    assert not can_become(RoundStatus.CLOSED, RoundStatus.CLOSED)
    assert not can_become(RoundStatus.CLOSED, RoundStatus.OPEN)
    assert accepts_input(RoundStatus.OPEN) and not accepts_input(RoundStatus.CLOSED)


def test_scoring_moves_pending_running_scored_or_failed_and_back_on_new_input() -> None:
    def run(status: ScoringStatus, *events: ScoringEvent) -> ScoringStatus:
        for event in events:
            status = scoring_status_after(status, event)
        return status

    E, S = ScoringEvent, ScoringStatus
    assert run(S.PENDING, E.STARTED) is S.RUNNING
    assert run(S.PENDING, E.STARTED, E.SCORED) is S.SCORED
    assert run(S.PENDING, E.STARTED, E.FAILED) is S.FAILED
    assert run(S.SCORED, E.INPUT_CHANGED) is S.PENDING
    assert run(S.FAILED, E.INPUT_CHANGED) is S.PENDING
    # New input while a job runs: it stays running, and goes back to pending when it finishes.
    assert run(S.PENDING, E.STARTED, E.INPUT_CHANGED) is S.RUNNING
    assert run(S.PENDING, E.STARTED, E.INPUT_CHANGED, E.OUTDATED) is S.PENDING
    # A job that finds the results current marks a pending round scored.
    assert run(S.PENDING, E.SCORED) is S.SCORED


async def test_the_sql_case_is_the_table(database_url: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        for event, status in itertools.product(ScoringEvent, ScoringStatus):
            got = await connection.fetchval(
                f"SELECT {scoring_status_sql(event, 's')} FROM (VALUES ($1::text)) AS t(s)",
                status.value,
            )
            assert got == scoring_status_after(status, event), (event, status)
    finally:
        await connection.close()
