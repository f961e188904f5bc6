"""The org chart: bulk upsert with whole-tree validation."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from coherence_api.errors import InvalidInput, NotFound, pointer
from coherence_api.pagination import PageRequest, Rows
from coherence_api.units.repository import UnitRepository
from coherence_api.units.schemas import UnitIn, UnitsUpserted
from coherence_core.db.base import utcnow
from coherence_core.db.models import Unit


def find_cycles(parents: dict[str, str | None]) -> set[str]:
    """Every unit that lies on a cycle of parent links."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    on_cycle: set[str] = set()
    for start in parents:
        path: list[str] = []
        node: str | None = start
        while node is not None and node in parents and state.get(node) != 2:
            if state.get(node) == 1:
                on_cycle.update(path[path.index(node) :])
                break
            state[node] = 1
            path.append(node)
            node = parents[node]
        for visited in path:
            state[visited] = 2
    return on_cycle


def validate_tree(incoming: list[UnitIn], existing: Iterable[Unit]) -> None:
    errors: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    for i, unit in enumerate(incoming):
        if unit.external_id in seen:
            errors.append(
                {
                    "pointer": pointer("units", i, "external_id"),
                    "detail": f"duplicate of /units/{seen[unit.external_id]}",
                }
            )
        else:
            seen[unit.external_id] = i
    parents: dict[str, str | None] = {u.external_id: u.parent_external_id for u in existing}
    parents.update({u.external_id: u.parent_external_id for u in incoming})
    for i, unit in enumerate(incoming):
        parent = unit.parent_external_id
        if parent is not None and parent not in parents:
            errors.append(
                {
                    "pointer": pointer("units", i, "parent_external_id"),
                    "detail": f"unknown parent unit '{parent}'",
                }
            )
    cycles = find_cycles(parents)
    for i, unit in enumerate(incoming):
        if unit.external_id in cycles and seen[unit.external_id] == i:
            errors.append(
                {
                    "pointer": pointer("units", i, "parent_external_id"),
                    "detail": "this parent link makes a cycle",
                }
            )
    if errors:
        raise InvalidInput(f"{len(errors)} invalid unit(s); nothing was stored", errors=errors)


async def upsert(
    session: AsyncSession, *, organization_id: uuid.UUID, units: list[UnitIn]
) -> UnitsUpserted:
    repository = UnitRepository(session)
    existing = {u.external_id: u for u in await repository.all()}
    validate_tree(units, existing.values())
    created = updated = unchanged = 0
    changed: list[dict[str, object]] = []
    now = utcnow()
    for unit in units:
        current = existing.get(unit.external_id)
        values = unit.model_dump()
        if current is None:
            created += 1
        elif all(getattr(current, k) == v for k, v in values.items()):
            unchanged += 1
            continue
        else:
            updated += 1
        changed.append({**values, "organization_id": organization_id, "updated_at": now})
    await repository.upsert(rows=changed)
    return UnitsUpserted(created=created, updated=updated, unchanged=unchanged)


async def get(session: AsyncSession, *, external_id: str) -> Unit:
    unit = await UnitRepository(session).get(external_id=external_id)
    if unit is None:
        raise NotFound(f"No unit '{external_id}'.")
    return unit


async def list_page(session: AsyncSession, *, page: PageRequest) -> Rows[Unit]:
    return await UnitRepository(session).page(page=page)
