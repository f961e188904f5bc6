"""Ingest baselines: the same answers as raw asyncpg COPY and as per-row ORM inserts, and the
table resets that make every measurement start alike."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import numpy as np
from sqlalchemy import delete

from benchmarks.common import (
    BenchConfig,
)
from coherence_api.responses.copy import COLUMNS as ANSWER_COLUMNS
from coherence_core.db.models import Answer
from coherence_core.db.session import create_engine
from coherence_core.db.tenancy import system_sessionmaker
from coherence_core.synthetic import (
    NULL_VALUE,
    SyntheticOrg,
)

# ------------------------------------------------------------------------------------- the data


def answer_batches(org: SyntheticOrg, batch_size: int) -> list[tuple[range, int]]:
    """(respondents, answers) per batch, in `to_api_batches` order (originals only)."""
    out = []
    for first in range(0, org.n_respondents, batch_size):
        last = min(first + batch_size, org.n_respondents)
        lo, hi = np.searchsorted(org.answer_submission, [first, last])
        out.append((range(first, last), int(hi - lo)))
    return out


def answer_records(
    org: SyntheticOrg, respondents: range, organization_id: uuid.UUID, round_id: uuid.UUID
) -> list[tuple[Any, ...]]:
    """The rows the ingest service COPYs for these respondents (respondent id = number + 1)."""
    lo, hi = np.searchsorted(org.answer_submission, [respondents.start, respondents.stop])
    values = org.answer_value[lo:hi].tolist()
    return list(
        zip(
            [organization_id] * (hi - lo),
            [round_id] * (hi - lo),
            (org.answer_submission[lo:hi].astype(np.int64) + 1).tolist(),
            org.answer_target[lo:hi].tolist(),
            org.answer_item[lo:hi].tolist(),
            [None if v == NULL_VALUE else v for v in values],
            strict=True,
        )
    )


@contextlib.asynccontextmanager
async def connect(config: BenchConfig) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(config.dsn)
    try:
        yield connection
    finally:
        await connection.close()


async def reset_table(config: BenchConfig, round_ids: list[uuid.UUID]) -> None:
    """Remove a measurement's rows, vacuum, and checkpoint: the next one starts alike."""
    async with connect(config) as connection:
        await connection.execute("DELETE FROM answer WHERE round_id = ANY($1::uuid[])", round_ids)
        await connection.execute(
            "DELETE FROM respondent WHERE round_id = ANY($1::uuid[])", round_ids
        )
        await connection.execute("VACUUM (ANALYZE) answer")
        await connection.execute("VACUUM (ANALYZE) respondent")
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await connection.execute("CHECKPOINT")


async def count_round(config: BenchConfig, round_id: uuid.UUID) -> tuple[int, int]:
    async with connect(config) as connection:
        answers = await connection.fetchval(
            "SELECT count(*) FROM answer WHERE round_id = $1", round_id
        )
        respondents = await connection.fetchval(
            "SELECT count(*) FROM respondent WHERE round_id = $1", round_id
        )
    return int(answers), int(respondents)


# ------------------------------------------------------------------------------------ baselines


async def copy_batched(
    config: BenchConfig, batches: list[list[tuple[Any, ...]]], concurrency: int
) -> float:
    """One COPY (and transaction) per batch over `concurrency` connections."""
    pool = await asyncpg.create_pool(config.dsn, min_size=concurrency, max_size=concurrency)
    try:
        pending = iter(batches)

        async def worker() -> None:
            async with pool.acquire() as connection:
                for records in pending:
                    async with connection.transaction():
                        await connection.copy_records_to_table(
                            "answer", records=records, columns=ANSWER_COLUMNS
                        )

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started
    finally:
        await pool.close()


async def copy_single(config: BenchConfig, records: list[tuple[Any, ...]]) -> float:
    """Every answer in one COPY on one connection."""
    async with connect(config) as connection:
        started = time.perf_counter()
        await connection.copy_records_to_table("answer", records=records, columns=ANSWER_COLUMNS)
        return time.perf_counter() - started


async def orm_insert(config: BenchConfig, batches: list[list[tuple[Any, ...]]]) -> float:
    """`session.add(Answer(...))` per row, one commit per batch."""
    engine = create_engine(config.database_url, pool_size=1)
    sessionmaker = system_sessionmaker(engine, reason="benchmark: rows of a fixed organisation")
    try:
        # warm-up, off the clock: the connection, the mapper and the INSERT statement's cache
        warmup = uuid.uuid4()
        async with sessionmaker() as session:
            session.add_all(
                Answer(**dict(zip(ANSWER_COLUMNS, row, strict=True))) for row in batches[0][:100]
            )
            for answer in session.new:
                answer.round_id = warmup
            await session.commit()
        async with sessionmaker() as session:
            await session.execute(delete(Answer).where(Answer.round_id == warmup))
            await session.commit()
        started = time.perf_counter()
        for records in batches:
            async with sessionmaker() as session:
                for organization_id, round_id, respondent_id, target, item, value in records:
                    session.add(
                        Answer(
                            organization_id=organization_id,
                            round_id=round_id,
                            respondent_id=respondent_id,
                            target_idx=target,
                            item_idx=item,
                            value=value,
                        )
                    )
                await session.commit()
        return time.perf_counter() - started
    finally:
        await engine.dispose()
