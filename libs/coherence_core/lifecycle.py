"""A round's lifecycle, in one table that the API, the worker and their SQL all read.

A round is `open` until it is closed, and never opens again. Its scoring moves `pending →
running → scored | failed`, and back to `pending` whenever its input changes. The API moves it on
new input; the worker on starting, finishing and failing. Statements that change the status in
Postgres render it from the same table (`scoring_status_after`), so the rule exists once.
"""

from __future__ import annotations

from enum import StrEnum


class RoundStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class ScoringStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SCORED = "scored"
    FAILED = "failed"


class ScoringEvent(StrEnum):
    #: Responses accepted, the round closed, or a rescoring asked for.
    INPUT_CHANGED = "input_changed"
    #: A job starts scoring the round.
    STARTED = "started"
    #: A job wrote, or found, results for the round's current input version.
    SCORED = "scored"
    #: A job wrote results, but the input changed while it ran.
    OUTDATED = "outdated"
    #: A job failed.
    FAILED = "failed"


#: The statuses a round may move to from each status.
ROUND_TRANSITIONS: dict[RoundStatus, frozenset[RoundStatus]] = {
    RoundStatus.OPEN: frozenset({RoundStatus.CLOSED}),
    RoundStatus.CLOSED: frozenset(),
}

_P, _R, _S, _F = (
    ScoringStatus.PENDING,
    ScoringStatus.RUNNING,
    ScoringStatus.SCORED,
    ScoringStatus.FAILED,
)

#: event → {status before: status after}; a status not listed stays as it is. A running job is
#: left running by new input: it notices the newer input version when it finishes (`OUTDATED`).
SCORING_TRANSITIONS: dict[ScoringEvent, dict[ScoringStatus, ScoringStatus]] = {
    ScoringEvent.INPUT_CHANGED: {_S: _P, _F: _P},
    ScoringEvent.STARTED: {_P: _R, _S: _R, _F: _R},
    ScoringEvent.SCORED: {_P: _S, _R: _S},
    ScoringEvent.OUTDATED: {_R: _P},
    ScoringEvent.FAILED: {_R: _F},
}


def can_become(current: RoundStatus, target: RoundStatus) -> bool:
    return target in ROUND_TRANSITIONS[current]


def accepts_input(status: RoundStatus) -> bool:
    """Only an open round takes responses."""
    return status is RoundStatus.OPEN


def scoring_status_after(current: ScoringStatus, event: ScoringEvent) -> ScoringStatus:
    return SCORING_TRANSITIONS[event].get(current, current)


def scoring_status_sql(event: ScoringEvent, column: str = "scoring_status") -> str:
    """The SQL expression for `column` after `event`: `SCORING_TRANSITIONS[event]` as a CASE."""
    whens = " ".join(
        f"WHEN '{before}' THEN '{after}'" for before, after in SCORING_TRANSITIONS[event].items()
    )
    return f"(CASE {column} {whens} ELSE {column} END)"
