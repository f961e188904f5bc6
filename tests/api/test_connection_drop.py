"""A client that drops its connection in the middle of a batch leaves nothing stored."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx
import uvicorn
from sqlalchemy import text

from tests.api.support import Org, open_round, put_units


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_dropped_connection_mid_body_stores_nothing(
    client: httpx.AsyncClient, org: Org, app, admin_engine
):
    await put_units(client, org, [{"external_id": "fin", "name": "Finance"}])
    round_ = await open_round(client, org)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        body = json.dumps(
            {
                "responses": [
                    {"respondent": f"p{i}", "unit": "fin", "answers": {"ps_safe_risk": 4}}
                    for i in range(2000)
                ]
            }
        ).encode()
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        head = (
            f"POST /v1/rounds/{round_['id']}/responses HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {org.key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        writer.write(head + body[: len(body) // 2])
        await writer.drain()
        writer.close()  # gone, half-way through the batch
        await writer.wait_closed()
        await asyncio.sleep(0.5)
        # The server is still healthy, and the half batch left no trace.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as live:
            got = (await live.get(f"/v1/rounds/{round_['id']}", headers=org.headers)).json()
        assert got["respondents"] == 0 and got["input_version"] == 0
        async with admin_engine.connect() as connection:
            count = (
                await connection.execute(
                    text("SELECT count(*) FROM respondent WHERE round_id = :r"),
                    {"r": round_["id"]},
                )
            ).scalar_one()
        assert count == 0
    finally:
        server.should_exit = True
        await serving
