"""Results of a round (scope `results:read`), with ETags keyed to the scoring run."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from coherence_api.deps import ReaderCaller, SessionDep
from coherence_api.pagination import PagingDep
from coherence_api.results import service
from coherence_api.results.schemas import (
    ChangeOut,
    Network,
    Perspective,
    ResultsPage,
    SummaryOut,
    TieScoreOut,
    UnitScoreOut,
)
from coherence_core.db.models import RoundSummary

router = APIRouter(prefix="/v1/rounds/{round_id}/results", tags=["results"])

NOT_SCORED: dict[int | str, dict[str, Any]] = {
    409: {"description": "The round has not been scored yet."}
}


class NotModified(Exception):
    def __init__(self, etag: str) -> None:
        self.etag = etag


def check_etag(request: Request, response: Response, run_id: int) -> None:
    """Results change only with a new scoring run: the ETag is the run and the request URL."""
    digest = hashlib.sha256(f"{run_id}|{request.url.path}?{request.url.query}".encode())
    etag = f'"{digest.hexdigest()[:32]}"'
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "private, no-cache"
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        raise NotModified(etag)


@router.get("/summary", response_model=SummaryOut, summary="Round summary", responses=NOT_SCORED)
async def get_summary(
    round_id: uuid.UUID,
    caller: ReaderCaller,
    session: SessionDep,
    request: Request,
    response: Response,
) -> SummaryOut:
    summary = await service.scored_round(session, round_id=round_id)
    check_etag(request, response, summary.run_id)
    return SummaryOut(**summary.summary, **_provenance(summary), scored_at=summary.scored_at)


def _provenance(summary: RoundSummary) -> dict[str, Any]:
    return {
        "preview": summary.preview,
        "method_version": summary.method_version,
        "input_version": summary.input_version,
    }


@router.get(
    "/units", response_model=ResultsPage[UnitScoreOut], summary="Unit results", responses=NOT_SCORED
)
async def get_unit_results(
    round_id: uuid.UUID,
    caller: ReaderCaller,
    session: SessionDep,
    paging: PagingDep,
    scale: Annotated[str | None, Query(max_length=64)] = None,
    measure: Annotated[str | None, Query(max_length=64)] = None,
    perspective: Perspective | None = None,
    unit: Annotated[str | None, Query(max_length=200, description="A unit's external id.")] = None,
    rollup: bool | None = None,
) -> ResultsPage[UnitScoreOut]:
    """One row per unit, scale, measure, perspective and roll-up flag."""
    summary = await service.scored_round(session, round_id=round_id)
    check_etag(paging.request, paging.response, summary.run_id)
    rows = await service.unit_scores(
        session,
        summary=summary,
        filters={
            "scale": scale,
            "measure": measure,
            "perspective": perspective,
            "unit": unit,
            "rollup": rollup,
        },
        page=paging.asked,
    )
    page = paging.page([UnitScoreOut.model_validate(r) for r in rows.items], rows.next_cursor)
    return ResultsPage[UnitScoreOut](**_provenance(summary), **dict(page))


@router.get(
    "/ties", response_model=ResultsPage[TieScoreOut], summary="Tie results", responses=NOT_SCORED
)
async def get_tie_results(
    round_id: uuid.UUID,
    caller: ReaderCaller,
    session: SessionDep,
    paging: PagingDep,
    measure: Annotated[str, Query(max_length=64)] = "index",
    scale: Annotated[str | None, Query(max_length=64)] = None,
    from_unit: Annotated[str | None, Query(max_length=200)] = None,
    to_unit: Annotated[str | None, Query(max_length=200)] = None,
) -> ResultsPage[TieScoreOut]:
    """Directed unit → unit relational capacity: how `from_unit`'s members rate `to_unit`."""
    summary = await service.scored_round(session, round_id=round_id)
    check_etag(paging.request, paging.response, summary.run_id)
    rows = await service.tie_scores(
        session,
        summary=summary,
        filters={"measure": measure, "scale": scale, "from_unit": from_unit, "to_unit": to_unit},
        page=paging.asked,
    )
    page = paging.page([TieScoreOut.model_validate(r) for r in rows.items], rows.next_cursor)
    return ResultsPage[TieScoreOut](**_provenance(summary), **dict(page))


@router.get(
    "/changes",
    response_model=ResultsPage[ChangeOut],
    summary="Change since an earlier round",
    responses=NOT_SCORED,
)
async def get_changes(
    round_id: uuid.UUID,
    since: Annotated[uuid.UUID, Query(description="The earlier round's id.")],
    caller: ReaderCaller,
    session: SessionDep,
    paging: PagingDep,
    scale: Annotated[str | None, Query(max_length=64)] = None,
    measure: Annotated[str | None, Query(max_length=64)] = None,
    perspective: Perspective | None = None,
    unit: Annotated[str | None, Query(max_length=200)] = None,
    rollup: bool | None = None,
) -> ResultsPage[ChangeOut]:
    """Unit rows of this round matched by unit `external_id`, scale, measure, perspective and
    roll-up flag to the earlier round: the difference of means and Welch's p-value, published
    when both rows are."""
    summary, earlier = await service.compared_rounds(session, round_id=round_id, since=since)
    check_etag(paging.request, paging.response, summary.run_id * 1_000_003 + earlier.run_id)
    rows = await service.changes(
        session,
        later=summary,
        earlier=earlier,
        filters={
            "scale": scale,
            "measure": measure,
            "perspective": perspective,
            "unit": unit,
            "rollup": rollup,
        },
        page=paging.asked,
    )
    page = paging.page(rows.items, rows.next_cursor)
    provenance = _provenance(summary)
    provenance["preview"] = summary.preview or earlier.preview
    return ResultsPage[ChangeOut](**provenance, **dict(page))


@router.get(
    "/network", response_model=Network, summary="The round as a graph", responses=NOT_SCORED
)
async def get_network(
    round_id: uuid.UUID,
    caller: ReaderCaller,
    session: SessionDep,
    request: Request,
    response: Response,
    scale: Annotated[str, Query(max_length=64)] = "relational_capacity",
    holes_limit: Annotated[int, Query(ge=0, le=10_000)] = 100,
    weakest_limit: Annotated[int, Query(ge=0, le=1000)] = 10,
) -> Network:
    """Nodes (units, with published internal and incoming index), edges (published external
    ties), the holes (pairs where neither unit rates the other) and the weakest ties, ready for
    graph libraries."""
    summary = await service.scored_round(session, round_id=round_id)
    check_etag(request, response, summary.run_id)
    graph = await service.network(
        session,
        summary=summary,
        scale=scale,
        holes_limit=holes_limit,
        weakest_limit=weakest_limit,
    )
    return graph.model_copy(update=_provenance(summary))
