"""The scoring engine's contract: polars frames in, polars frames out, no I/O.

Input frames (built by the answer loader from Postgres, or by tests and the synthetic generator):

``units`` — the round's frozen unit tree, one row per unit in the round:
    unit: Int32 (round-local index, 0..U-1), external_id: String,
    parent: Int32 | null (a unit in the same round, or null for a root), headcount: Int32 | null

``respondents`` — one row per respondent in the round:
    respondent: Int64 (round-local id), unit: Int32 (home unit)

``answers`` — one row per answered or "don't know" item:
    respondent: Int64, target: Int32 | null (null for items asked once, else the target unit),
    item: Int16 (index into ``InstrumentDefinition.items``), value: Int16 | null (raw answer;
    null = "don't know"). Recoding and reversal are the engine's job.

Output frames are described by the schemas below; ``summary`` follows API.md's summary body
without the fields the job adds (``input_version``, ``method_version``, ``scored_at``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from coherence_core.instruments import InstrumentDefinition

#: Bump on any change to SCORING.md's formulas (SCORING.md §6). Method 2: pooled means.
METHOD_VERSION = "2"

UNITS_SCHEMA = {
    "unit": pl.Int32,
    "external_id": pl.String,
    "parent": pl.Int32,
    "headcount": pl.Int32,
}
RESPONDENTS_SCHEMA = {"respondent": pl.Int64, "unit": pl.Int32}
ANSWERS_SCHEMA = {"respondent": pl.Int64, "target": pl.Int32, "item": pl.Int16, "value": pl.Int16}

UNIT_SCORES_SCHEMA = {
    "unit": pl.String,  # external_id
    "scale": pl.String,
    "measure": pl.String,  # "index", a subscale key or an item key
    "perspective": pl.String,  # members | internal | incoming | outgoing
    "rollup": pl.Boolean,
    "n": pl.Int32,
    "mean": pl.Float64,
    "sd": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "rwg": pl.Float64,
    "band": pl.String,
    "low_agreement": pl.Boolean,
    "suppressed": pl.Boolean,
    "suppression_reason": pl.String,  # null | "min_group_size" | "complementary"
}
TIE_SCORES_SCHEMA = {
    "from_unit": pl.String,
    "to_unit": pl.String,
    "scale": pl.String,
    "measure": pl.String,
    "n": pl.Int32,
    "mean": pl.Float64,
    "sd": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "band": pl.String,
    "suppressed": pl.Boolean,
    "suppression_reason": pl.String,
}
#: Per-unit participation (response rate where headcount is known).
UNIT_PARTICIPATION_SCHEMA = {
    "unit": pl.String,
    "rollup": pl.Boolean,
    "respondents": pl.Int32,
    "headcount": pl.Int32,
    "response_rate": pl.Float64,
    "suppressed": pl.Boolean,
    "suppression_reason": pl.String,
}


@dataclass(frozen=True)
class ScoringSettings:
    """Per-organisation settings that change results (SCORING.md §3, §5)."""

    min_group_size: int = 5
    weak_below: float = 3.5
    strong_above: float = 4.0

    def __post_init__(self) -> None:
        if self.min_group_size < 3:
            raise ValueError("min_group_size never goes below 3")
        if self.weak_below > self.strong_above:
            raise ValueError("weak_below must not exceed strong_above")


@dataclass(frozen=True)
class LinkedPublication:
    """An earlier final publication of the organisation that holds some of the same responses
    (a respondent who sent exactly the same answers to that round): what it published, and
    the inputs it was computed from. ``same_respondents`` maps that round's respondent ids to
    this round's. The protection treats the shared responses as the same unknowns (SCORING.md
    §5.3: every round of the organisation is one publication)."""

    inputs: ScoringInput
    unit_scores: pl.DataFrame
    tie_scores: pl.DataFrame
    summary: dict[str, Any]
    same_respondents: dict[int, int]


@dataclass(frozen=True)
class ScoringInput:
    """``preview``: the round is open, so results are a perturbed preview (preview.py) keyed
    by the secret ``noise_key``; a closed round's final results are exact."""

    instrument: InstrumentDefinition
    units: pl.DataFrame
    respondents: pl.DataFrame
    answers: pl.DataFrame
    settings: ScoringSettings = field(default_factory=ScoringSettings)
    preview: bool = False
    noise_key: int = 0
    linked: tuple[LinkedPublication, ...] = ()


@dataclass(frozen=True)
class ScoringResult:
    """Everything a round publishes, already passed through the anonymity rules."""

    unit_scores: pl.DataFrame
    tie_scores: pl.DataFrame
    participation: pl.DataFrame
    summary: dict[str, Any]
    preview: bool = False
    #: what the protection did: rounds of repair, atoms, rows hidden by reason (for logs/bench)
    diagnostics: dict[str, Any] = field(default_factory=dict)
