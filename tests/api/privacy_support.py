"""A reader's view of a round, through REST: every published number, as frames the independent
LP auditor (tests/privacy/lp_audit.py) reads, and small hand-made rounds pushed through REST with
the ScoringInput that states the truth behind them (what only the test knows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import polars as pl

from coherence_core.instruments import builtin_instrument
from coherence_scoring.engine import ScoringInput, ScoringSettings
from coherence_scoring.engine.types import TIE_SCORES_SCHEMA, UNIT_SCORES_SCHEMA
from tests.api.support import Org, fetch_all

INSTRUMENT = builtin_instrument("coherence-v1")
PS_ITEMS = [i.key for s, i in INSTRUMENT.items if s.key == "psychological_safety"]
RC_ITEMS = [i.key for s, i in INSTRUMENT.items if s.key == "relational_capacity"]
RL_ITEMS = [i.key for s, i in INSTRUMENT.items if s.key == "relational_leadership"]


@dataclass
class Publication:
    """What a reader got from one round at one moment."""

    unit_scores: pl.DataFrame
    tie_scores: pl.DataFrame
    summary: dict[str, Any]
    preview: bool

    def unit(self, unit: str, scale: str, measure: str, perspective: str, rollup: bool) -> dict:
        rows = self.unit_scores.filter(
            (pl.col("unit") == unit)
            & (pl.col("scale") == scale)
            & (pl.col("measure") == measure)
            & (pl.col("perspective") == perspective)
            & (pl.col("rollup") == rollup)
        )
        assert rows.height == 1, (unit, scale, measure, perspective, rollup)
        return rows.row(0, named=True)

    def tie(self, from_unit: str, to_unit: str, measure: str = "index") -> dict | None:
        rows = self.tie_scores.filter(
            (pl.col("from_unit") == from_unit)
            & (pl.col("to_unit") == to_unit)
            & (pl.col("measure") == measure)
        )
        return rows.row(0, named=True) if rows.height else None


async def read_publication(client: httpx.AsyncClient, org: Org, round_id: str) -> Publication:
    base = f"/v1/rounds/{round_id}/results"
    units = await fetch_all(client, org, f"{base}/units")
    measures = ["index", "communication", "relationships", "capacity", *RC_ITEMS]
    ties = [
        row
        for measure in measures
        for row in await fetch_all(client, org, f"{base}/ties", measure=measure)
    ]
    summary = (await client.get(f"{base}/summary", headers=org.headers)).json()
    return Publication(
        unit_scores=pl.DataFrame(units, schema=UNIT_SCORES_SCHEMA) if units else pl.DataFrame(),
        tie_scores=pl.DataFrame(ties, schema=TIE_SCORES_SCHEMA) if ties else pl.DataFrame(),
        summary=summary,
        preview=summary["preview"],
    )


@dataclass
class Person:
    """One respondent of a hand-made round: home unit, items asked once, ratings by target."""

    id: int
    unit: str
    answers: dict[str, int | None] = field(default_factory=dict)
    about: dict[str, dict[str, int | None]] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return {
            "respondent": f"hr-{self.id:05d}",
            "unit": self.unit,
            "answers": self.answers,
            "about": self.about,
        }


def everyone_answers(value: int) -> dict[str, int]:
    """Every leadership and safety item, one value."""
    return {item: value for item in (*RL_ITEMS, *PS_ITEMS)}


def rates(value: int) -> dict[str, int]:
    """Every relational capacity item about one target, one value."""
    return dict.fromkeys(RC_ITEMS, value)


def truth(units: list[dict[str, Any]], people: list[Person], k: int) -> ScoringInput:
    """The ScoringInput behind a hand-made round (units in the order given)."""
    index = {u["external_id"]: i for i, u in enumerate(units)}
    item_index = {item.key: i for i, (_, item) in enumerate(INSTRUMENT.items)}
    answers: list[tuple[int, int | None, int, int | None]] = []
    for p in people:
        answers += [(p.id, None, item_index[k_], v) for k_, v in p.answers.items()]
        for target, ratings in p.about.items():
            answers += [(p.id, index[target], item_index[k_], v) for k_, v in ratings.items()]
    return ScoringInput(
        instrument=INSTRUMENT,
        units=pl.DataFrame(
            {
                "unit": list(range(len(units))),
                "external_id": [u["external_id"] for u in units],
                "parent": [index.get(u.get("parent_external_id") or "") for u in units],
                "headcount": [u.get("headcount") for u in units],
            },
            schema={
                "unit": pl.Int32,
                "external_id": pl.String,
                "parent": pl.Int32,
                "headcount": pl.Int32,
            },
        ),
        respondents=pl.DataFrame(
            {"respondent": [p.id for p in people], "unit": [index[p.unit] for p in people]},
            schema={"respondent": pl.Int64, "unit": pl.Int32},
        ),
        answers=pl.DataFrame(
            answers,
            schema={
                "respondent": pl.Int64,
                "target": pl.Int32,
                "item": pl.Int16,
                "value": pl.Int16,
            },
            orient="row",
        ),
        settings=ScoringSettings(min_group_size=k),
    )


async def push(client: httpx.AsyncClient, org: Org, round_id: str, people: list[Person]) -> None:
    response = await client.post(
        f"/v1/rounds/{round_id}/responses",
        json={"responses": [p.payload() for p in people]},
        headers=org.headers,
    )
    assert response.status_code == 200, response.text


async def close(client: httpx.AsyncClient, org: Org, round_id: str) -> None:
    response = await client.post(f"/v1/rounds/{round_id}/close", headers=org.headers)
    assert response.status_code == 202, response.text
