"""A synthetic organisation in the shapes the service takes: API bodies and engine frames."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from coherence_core.synthetic.generator import NO_TARGET, NULL_VALUE, SyntheticOrg

if TYPE_CHECKING:
    from coherence_scoring.engine.types import ScoringInput, ScoringSettings


def to_units_payload(org: SyntheticOrg) -> dict[str, Any]:
    """The ``PUT /v1/units`` body (parents before children; optional fields left out)."""
    units: list[dict[str, Any]] = []
    for u in org.units:
        body: dict[str, Any] = {"external_id": u.external_id, "name": u.name}
        if u.parent_external_id is not None:
            body["parent_external_id"] = u.parent_external_id
        if u.headcount is not None:
            body["headcount"] = u.headcount
        units.append(body)
    return {"units": units}


def _response_bodies(org: SyntheticOrg, first: int, last: int) -> list[dict[str, Any]]:
    """API response objects of submissions ``first..last-1``."""
    lo, hi = np.searchsorted(org.answer_submission, [first, last])
    bounds = np.searchsorted(org.answer_submission[lo:hi], np.arange(first, last + 1)).tolist()
    targets = org.answer_target[lo:hi].tolist()
    items = org.answer_item[lo:hi].tolist()
    values = org.answer_value[lo:hi].tolist()
    item_keys = [item.key for _, item in org.instrument.items]
    ext = [u.external_id for u in org.units]
    respondents = org.submission_respondent[first:last].tolist()
    homes = org.respondent_unit[org.submission_respondent[first:last]].tolist()
    out: list[dict[str, Any]] = []
    for s in range(last - first):
        answers: dict[str, int | None] = {}
        about: dict[str, dict[str, int | None]] = {}
        for j in range(bounds[s], bounds[s + 1]):
            v = values[j]
            value = None if v == NULL_VALUE else v
            t = targets[j]
            if t == NO_TARGET:
                answers[item_keys[items[j]]] = value
            else:
                target = ext[t]
                if target not in about:
                    about[target] = {}
                about[target][item_keys[items[j]]] = value
        out.append(
            {
                "respondent": org.respondent_id(respondents[s]),
                "unit": ext[homes[s]],
                "answers": answers,
                "about": about,
            }
        )
    return out


def to_api_batches(org: SyntheticOrg, batch_size: int = 500) -> list[dict[str, Any]]:
    """``POST /v1/rounds/{id}/responses`` bodies ``{"responses": [...]}`` in the API.md shape.

    The originals come first; the resubmissions follow in batches of their own, so each one is
    sent in a later batch than the submission it replaces (and no batch names a respondent
    twice).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    batches: list[dict[str, Any]] = []
    for start, stop in ((0, org.n_respondents), (org.n_respondents, org.n_submissions)):
        for first in range(start, stop, batch_size):
            last = min(first + batch_size, stop)
            batches.append({"responses": _response_bodies(org, first, last)})
    return batches


def to_scoring_frames(org: SyntheticOrg) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The engine's ``units``, ``respondents`` and ``answers`` frames (last submission wins).

    Units are indexed ``0..U-1`` in ``org.units`` order, respondents by their 0-based number,
    items by ``InstrumentDefinition.item_index``.
    """
    units = pl.DataFrame(
        {
            "unit": np.arange(org.n_units, dtype=np.int32),
            "external_id": [u.external_id for u in org.units],
            "parent": [int(p) if p >= 0 else None for p in org.unit_parent],
            "headcount": [u.headcount for u in org.units],
        },
        schema={
            "unit": pl.Int32,
            "external_id": pl.String,
            "parent": pl.Int32,
            "headcount": pl.Int32,
        },
    )
    respondents = pl.DataFrame(
        {
            "respondent": np.arange(org.n_respondents, dtype=np.int64),
            "unit": org.respondent_unit.astype(np.int32),
        }
    )
    counts = np.zeros(org.n_submissions, dtype=bool)
    counts[org.latest_submission()] = True
    keep = counts[org.answer_submission]
    answers = pl.DataFrame(
        {
            "respondent": org.submission_respondent[org.answer_submission[keep]].astype(np.int64),
            "target": org.answer_target[keep],
            "item": org.answer_item[keep],
            "value": org.answer_value[keep],
        }
    ).with_columns(
        pl.when(pl.col("target") != NO_TARGET).then(pl.col("target")).cast(pl.Int32),
        pl.when(pl.col("value") != NULL_VALUE).then(pl.col("value")).cast(pl.Int16),
    )
    return units, respondents, answers


def to_scoring_input(org: SyntheticOrg, settings: ScoringSettings | None = None) -> ScoringInput:
    """The engine's ``ScoringInput`` for the organisation (see ``to_scoring_frames``)."""
    from coherence_scoring.engine.types import ScoringInput, ScoringSettings

    units, respondents, answers = to_scoring_frames(org)
    return ScoringInput(
        instrument=org.instrument,
        units=units,
        respondents=respondents,
        answers=answers,
        settings=settings or ScoringSettings(),
    )
