"""An HR-system-like client: the same responses as JSON, NDJSON and CSV, with retries, give
identical results, and no raw person id is stored anywhere."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from coherence_core.settings import Settings
from coherence_core.synthetic import generate_organisation, to_api_batches, to_units_payload
from tests.api.support import new_org, open_round, put_units, run_scoring


def as_ndjson(body: dict[str, Any]) -> bytes:
    return "\n".join(json.dumps(r) for r in body["responses"]).encode()


def as_csv(body: dict[str, Any]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["respondent", "unit", "target", "item", "value"])
    for r in body["responses"]:
        for item, value in r.get("answers", {}).items():
            writer.writerow([r["respondent"], r["unit"], "", item, "" if value is None else value])
        for target, items in r.get("about", {}).items():
            for item, value in items.items():
                writer.writerow(
                    [r["respondent"], r["unit"], target, item, "" if value is None else value]
                )
    return out.getvalue().encode()


FORMATS = {
    "application/json": lambda body: json.dumps(body).encode(),
    "application/x-ndjson": as_ndjson,
    "text/csv": as_csv,
}


async def _results(engine: AsyncEngine, round_id: str) -> dict[str, list[tuple[Any, ...]]]:
    async with engine.connect() as connection:
        out = {}
        for table, columns, order in (
            (
                "unit_score",
                "unit, scale, measure, perspective, rollup, n, mean, sd, ci_low, ci_high, rwg, band, suppressed, suppression_reason",
                "1, 2, 3, 4, 5",
            ),
            (
                "tie_score",
                "from_unit, to_unit, scale, measure, n, mean, sd, band, suppressed, suppression_reason",
                "1, 2, 3, 4",
            ),
            ("round_summary", "summary", "1"),
        ):
            rows = await connection.execute(
                text(f"SELECT {columns} FROM {table} WHERE round_id = :r ORDER BY {order}"),
                {"r": round_id},
            )
            out[table] = [tuple(r) for r in rows]
    return out


@pytest.mark.slow
async def test_three_formats_with_retries_score_identically_and_keep_no_raw_ids(
    client: httpx.AsyncClient,
    app: FastAPI,
    settings: Settings,
    queue_name: str,
    admin_engine: AsyncEngine,
):
    synthetic = generate_organisation(n_respondents=300, n_units=15, seed=5)
    org = await new_org(client, min_group_size=3)
    await put_units(client, org, to_units_payload(synthetic)["units"])
    batches = to_api_batches(synthetic, batch_size=100)
    raw_ids = {r["respondent"] for batch in batches for r in batch["responses"]}
    results = []
    for content_type, encode in FORMATS.items():
        round_ = await open_round(client, org, name=content_type)
        for i, batch in enumerate(batches):
            headers = {
                **org.headers,
                "content-type": content_type,
                "Idempotency-Key": f"{round_['id']}-{i}",
            }
            url = f"/v1/rounds/{round_['id']}/responses"
            first = await client.post(url, content=encode(batch), headers=headers)
            assert first.status_code == 200, first.text
            retry = await client.post(
                url, content=encode(batch), headers=headers
            )  # a timeout retry
            assert retry.json() == first.json()
        await client.post(f"/v1/rounds/{round_['id']}/close", headers=org.headers)
        await run_scoring(app, settings, queue_name)
        got = (await client.get(f"/v1/rounds/{round_['id']}", headers=org.headers)).json()
        assert got["scoring"]["status"] == "scored"
        assert got["respondents"] == synthetic.n_respondents
        results.append(await _results(admin_engine, round_["id"]))
    assert results[0]["unit_score"], "scoring produced rows"
    assert results[0] == results[1] == results[2]

    # No raw person id anywhere: every text-like column of every table.
    async with admin_engine.connect() as connection:
        tables = (
            (
                await connection.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            )
            .scalars()
            .all()
        )
        dump = []
        for table in tables:
            rows = await connection.execute(text(f'SELECT t::text FROM "{table}" t'))
            dump.extend(rows.scalars().all())
    blob = "\n".join(dump)
    assert not [rid for rid in raw_ids if rid in blob]
