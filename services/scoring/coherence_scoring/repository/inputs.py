"""A round's inputs: its frozen units, its respondents and their answers (binary COPY out)."""

from __future__ import annotations

import uuid
from typing import Any

from coherence_core.db.repository import ConnectionRepository

#: What a "don't know" (a null value) is sent as, so that every answer row has one width.
NULL_VALUE = -32768
#: Fixed-width binary rows, parsed with numpy by `loading`.
ANSWERS_QUERY = (
    f"SELECT respondent_id, target_idx, item_idx, COALESCE(value, {NULL_VALUE})::int2 "
    "FROM answer WHERE round_id = $1"
)
RESPONDENTS_QUERY = "SELECT id, unit_idx FROM respondent WHERE round_id = $1"


class InputRepository(ConnectionRepository):
    async def input_version(self, *, round_id: uuid.UUID) -> int:
        version: int = await self.connection.fetchval(
            "SELECT input_version FROM round WHERE id = $1", round_id
        )
        return version

    async def units(self, *, round_id: uuid.UUID) -> list[Any]:
        """The frozen unit tree by index: idx, external_id, parent_idx, headcount."""
        rows: list[Any] = await self.connection.fetch(
            "SELECT idx, external_id, parent_idx, headcount FROM round_unit "
            "WHERE round_id = $1 ORDER BY idx",
            round_id,
        )
        return rows

    async def copy_respondents(self, *, round_id: uuid.UUID) -> bytes:
        return await self._copy(RESPONDENTS_QUERY, round_id)

    async def copy_answers(self, *, round_id: uuid.UUID) -> bytes:
        return await self._copy(ANSWERS_QUERY, round_id)

    async def respondent_hashes(self, *, round_id: uuid.UUID) -> dict[int, bytes]:
        """respondent id → the keyed hash of the sender's id for the person."""
        rows = await self.connection.fetch(
            "SELECT id, respondent_hash FROM respondent WHERE round_id = $1", round_id
        )
        return {row["id"]: bytes(row["respondent_hash"]) for row in rows}

    async def _copy(self, query: str, *args: Any) -> bytes:
        """`COPY (query) TO STDOUT (FORMAT binary)`, collected in memory."""
        chunks: list[bytes] = []

        async def sink(chunk: bytes) -> None:
            chunks.append(chunk)

        await self.connection.copy_from_query(query, *args, output=sink, format="binary")
        return b"".join(chunks)
