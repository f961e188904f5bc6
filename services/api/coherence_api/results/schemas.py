from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

Perspective = Literal["members", "internal", "incoming", "outgoing"]
SuppressionReason = Literal["min_group_size", "complementary"]

_SUPPRESSED = Field(description="True when anonymity rules hide the values of this row.")
_REASON = Field(description="`min_group_size` or `complementary` when suppressed.")


class UnitScoreOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    unit: str = Field(description="The unit's external id.")
    scale: str
    measure: str = Field(description="`index`, a subscale key or an item key.")
    perspective: Perspective
    rollup: bool = Field(description="True: the unit with all its descendants.")
    n: int | None
    mean: float | None
    sd: float | None
    ci_low: float | None
    ci_high: float | None
    rwg: float | None
    band: str | None
    low_agreement: bool | None
    suppressed: bool = _SUPPRESSED
    suppression_reason: SuppressionReason | None = _REASON


class TieScoreOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_unit: str = Field(description="The rating unit (its members rated `to_unit`).")
    to_unit: str
    scale: str
    measure: str
    n: int | None
    mean: float | None
    sd: float | None
    ci_low: float | None
    ci_high: float | None
    band: str | None
    suppressed: bool = _SUPPRESSED
    suppression_reason: SuppressionReason | None = _REASON


class ChangeOut(BaseModel):
    unit: str
    scale: str
    measure: str
    perspective: Perspective
    rollup: bool
    mean: float | None
    earlier_mean: float | None
    difference: float | None = Field(description="`mean − earlier_mean`.")
    p_value: float | None = Field(
        description="Welch's two-sided t-test from the two published rows' mean, sd and n; "
        "null when either sd is not published."
    )
    suppressed: bool
    suppression_reason: SuppressionReason | None


class ScaleSummary(BaseModel):
    mean: float | None
    alpha: float | None
    icc1: float | None
    icc2: float | None


class NetworkSummary(BaseModel):
    within_mean: float | None
    between_mean: float | None
    strong_share: float | None
    weak_share: float | None
    reciprocity_gap: float | None
    holes: int = Field(description="Pairs of units in the round where neither rates the other.")


class LeadershipCollaboration(BaseModel):
    pearson_r: float | None
    pearson_p: float | None
    spearman_rho: float | None
    spearman_p: float | None
    n_units: int


_PREVIEW = Field(
    description="True while the round is open: the numbers are a preview, perturbed so that "
    "successive versions cannot be subtracted (SCORING.md §5.3); false for the exact final "
    "results of a closed round."
)
_METHOD = Field(description="The scoring method that made these results (`2`: pooled means).")


class Provenance(BaseModel):
    """Which publication a results body comes from."""

    preview: bool = _PREVIEW
    method_version: str = _METHOD
    input_version: int = Field(
        description="The round's input version the results were computed from."
    )


class ResultsPage(Provenance, Generic[T]):
    items: list[T]
    next_cursor: str | None


class SummaryOut(BaseModel):
    respondents: int
    response_rate: float | None
    input_version: int
    method_version: str = _METHOD
    preview: bool = _PREVIEW
    scored_at: Any
    scales: dict[str, ScaleSummary]
    network: NetworkSummary
    leadership_collaboration: LeadershipCollaboration | None


class Node(BaseModel):
    id: str = Field(description="The unit's external id.")
    name: str
    parent: str | None
    respondents: int | None = Field(description="Null when fewer than the minimum group size.")
    internal: float | None = Field(description="Internal relational capacity index.")
    incoming: float | None = Field(description="Incoming relational capacity index.")


class Edge(BaseModel):
    source: str = Field(description="The rating unit.")
    target: str = Field(description="The rated unit.")
    mean: float
    n: int
    band: str | None


class Network(BaseModel):
    preview: bool = Field(default=False, description="True while the round is open (a preview).")
    method_version: str = Field(default="", description="The scoring method that made it.")
    input_version: int = Field(default=0, description="The input version it was computed from.")
    nodes: list[Node]
    edges: list[Edge] = Field(description="Published external ties (`index`).")
    suppressed_edges: int = Field(description="Ties that exist but are suppressed.")
    holes: list[tuple[str, str]] = Field(
        description="Unit pairs where neither rates the other (first `holes_limit`)."
    )
    holes_total: int
    weakest: list[Edge] = Field(description="The published external ties with the lowest mean.")
