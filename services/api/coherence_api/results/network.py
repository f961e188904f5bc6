"""The round as a graph: units as nodes, published directed ties as edges, holes, weakest ties."""

from __future__ import annotations

import uuid
from itertools import combinations

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from coherence_core.db.models import RoundUnit, TieScore, UnitParticipation, UnitScore


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


async def network(
    session: AsyncSession,
    *,
    round_id: uuid.UUID,
    run_id: int,
    scale: str,
    holes_limit: int,
    weakest_limit: int,
) -> Network:
    units = (
        await session.scalars(
            select(RoundUnit).where(RoundUnit.round_id == round_id).order_by(RoundUnit.idx)
        )
    ).all()
    by_idx = {u.idx: u.external_id for u in units}
    ties = (
        await session.scalars(
            select(TieScore).where(
                TieScore.round_id == round_id,
                TieScore.run_id == run_id,
                TieScore.scale == scale,
                TieScore.measure == "index",
            )
        )
    ).all()
    scores = (
        await session.scalars(
            select(UnitScore).where(
                UnitScore.round_id == round_id,
                UnitScore.run_id == run_id,
                UnitScore.scale == scale,
                UnitScore.measure == "index",
                UnitScore.rollup.is_(False),
                UnitScore.perspective.in_(["internal", "incoming"]),
            )
        )
    ).all()
    participation = {
        p.unit: p.respondents
        for p in (
            await session.scalars(
                select(UnitParticipation).where(
                    UnitParticipation.round_id == round_id,
                    UnitParticipation.run_id == run_id,
                    UnitParticipation.rollup.is_(False),
                )
            )
        ).all()
    }
    value = {(s.unit, s.perspective): s.mean for s in scores}
    nodes = [
        Node(
            id=u.external_id,
            name=u.name,
            parent=by_idx.get(u.parent_idx) if u.parent_idx is not None else None,
            respondents=participation.get(u.external_id),
            internal=value.get((u.external_id, "internal")),
            incoming=value.get((u.external_id, "incoming")),
        )
        for u in units
    ]
    external = [t for t in ties if t.from_unit != t.to_unit]
    edges = [
        Edge(source=t.from_unit, target=t.to_unit, mean=t.mean, n=t.n, band=t.band)
        for t in sorted(external, key=lambda t: (t.from_unit, t.to_unit))
        if not t.suppressed and t.mean is not None and t.n is not None
    ]
    rated = {frozenset((t.from_unit, t.to_unit)) for t in external}
    ids = sorted(by_idx.values())
    total_pairs = len(ids) * (len(ids) - 1) // 2
    holes: list[tuple[str, str]] = []
    for a, b in combinations(ids, 2):
        if len(holes) >= holes_limit:
            break
        if frozenset((a, b)) not in rated:
            holes.append((a, b))
    return Network(
        nodes=nodes,
        edges=edges,
        suppressed_edges=len(external) - len(edges),
        holes=holes,
        holes_total=total_pairs - len(rated),
        weakest=sorted(edges, key=lambda e: (e.mean, e.source, e.target))[:weakest_limit],
    )
