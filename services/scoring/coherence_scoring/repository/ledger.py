"""The publication ledger: publications, and whose responses each final one holds."""

from __future__ import annotations

import json
import uuid
from typing import Any

from coherence_core.db.bulk import copy_to_table
from coherence_core.db.repository import ConnectionRepository

_FINALS_HOLDING = """
SELECT pr.publication_id, pr.respondent_key
FROM publication_respondent pr JOIN publication p ON p.id = pr.publication_id
WHERE pr.organization_id = $1 AND p.kind = $2 AND pr.respondent_key = ANY($3)
ORDER BY pr.publication_id
"""
_FACTS = """
SELECT p.id, p.round_id, p.min_group_size, p.method_version,
       (SELECT count(*) FROM publication_respondent a WHERE a.publication_id = p.id)
           AS respondents
FROM publication p WHERE p.id = ANY($1)
"""
_ADD = """
INSERT INTO publication (organization_id, round_id, run_id, kind, input_version,
    method_version, min_group_size, published_at, rows_published, rows_suppressed,
    digest, summary, linked)
VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8, $9, $10, $11::jsonb, $12::jsonb)
RETURNING id
"""


class LedgerRepository(ConnectionRepository):
    async def holding(
        self, *, organization_id: uuid.UUID, kind: str, keys: list[bytes]
    ) -> dict[int, list[bytes]]:
        """Publications of `kind` holding any of the respondent `keys`: id → the keys held."""
        rows = await self.connection.fetch(_FINALS_HOLDING, organization_id, kind, keys)
        shared: dict[int, list[bytes]] = {}
        for row in rows:
            shared.setdefault(row["publication_id"], []).append(bytes(row["respondent_key"]))
        return shared

    async def facts(self, *, publication_ids: list[int]) -> list[Any]:
        """Per publication: id, round_id, min_group_size, method_version, respondents."""
        rows: list[Any] = await self.connection.fetch(_FACTS, publication_ids)
        return rows

    async def get(self, *, publication_id: int) -> Any:
        """round_id, run_id, min_group_size, summary, and the round's instrument."""
        return await self.connection.fetchrow(
            "SELECT p.round_id, p.run_id, p.min_group_size, p.summary, r.instrument "
            "FROM publication p JOIN round r ON r.id = p.round_id WHERE p.id = $1",
            publication_id,
        )

    async def add(
        self,
        *,
        organization_id: uuid.UUID,
        round_id: uuid.UUID,
        run_id: int,
        kind: str,
        input_version: int,
        method_version: str,
        min_group_size: int,
        rows_published: int,
        rows_suppressed: int,
        digest: str,
        summary: str,
        linked: list[int],
    ) -> int:
        publication_id: int = await self.connection.fetchval(
            _ADD,
            organization_id,
            round_id,
            run_id,
            kind,
            input_version,
            method_version,
            min_group_size,
            rows_published,
            rows_suppressed,
            digest,
            summary,
            json.dumps(linked),
        )
        return publication_id

    async def add_respondents(
        self, *, organization_id: uuid.UUID, publication_id: int, keys: list[bytes]
    ) -> None:
        await copy_to_table(
            self.connection,
            "publication_respondent",
            records=[(publication_id, key, organization_id) for key in keys],
            columns=["publication_id", "respondent_key", "organization_id"],
        )
