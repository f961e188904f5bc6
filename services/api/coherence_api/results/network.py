"""The round as a graph: units as nodes, published directed ties as edges, holes, weakest ties."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

from coherence_api.results.schemas import Edge, Network, Node
from coherence_core.db.models import RoundUnit, TieScore, UnitParticipation, UnitScore

#: The unit perspectives a node shows.
NODE_PERSPECTIVES = ["internal", "incoming"]


def build_network(
    *,
    units: Sequence[RoundUnit],
    ties: Sequence[TieScore],
    scores: Sequence[UnitScore],
    participation: Sequence[UnitParticipation],
    holes_limit: int,
    weakest_limit: int,
) -> Network:
    by_idx = {u.idx: u.external_id for u in units}
    respondents = {p.unit: p.respondents for p in participation}
    value = {(s.unit, s.perspective): s.mean for s in scores}
    nodes = [
        Node(
            id=u.external_id,
            name=u.name,
            parent=by_idx.get(u.parent_idx) if u.parent_idx is not None else None,
            respondents=respondents.get(u.external_id),
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
