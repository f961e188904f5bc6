"""The real API in a subprocess (`coherence api`) for the ingest benchmark, and a thin client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import BenchConfig, free_port
from coherence_core.synthetic import SyntheticOrg, to_units_payload


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    operator_token: str
    log_path: Path


@contextlib.contextmanager
def api_server(
    config: BenchConfig,
    *,
    max_body_bytes: int,
    max_batch: int,
    launcher: tuple[str, ...] = ("-m", "coherence_core.cli"),
    extra_env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """`coherence api` (uvicorn, as deployed) in a subprocess; stopped with SIGTERM.
    `launcher` replaces `-m coherence_core.cli` (for instrumented runs, see profile_ingest.py)."""
    port = free_port()
    token = "bench-operator-" + secrets.token_hex(8)
    with tempfile.TemporaryDirectory(prefix="coherence-bench-") as scratch:
        env = {
            **os.environ,
            "DATABASE_URL": config.app_url,
            "COHERENCE_OWNER_DATABASE_URL": config.database_url,
            "REDIS_URL": config.redis_url,
            "COHERENCE_ADMIN_TOKEN": token,
            "COHERENCE_SECRET_KEY": "bench-secret-" + secrets.token_hex(8),
            "COHERENCE_STATE_DIR": scratch,
            "COHERENCE_LOG_LEVEL": "warning",
            "COHERENCE_MAX_BODY_BYTES": str(max_body_bytes),
            "COHERENCE_MAX_BATCH_RESPONSES": str(max_batch),
            **(extra_env or {}),
        }
        log_path = Path(scratch) / "api.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, *launcher, "api", "--port", str(port)],
                env=env,
                cwd=scratch,  # no stray .env
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        server = Server(process, f"http://127.0.0.1:{port}", token, log_path)
        try:
            _wait_ready(server)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the API exited:\n{server.log_path.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.base_url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the API did not become ready:\n{server.log_path.read_text()}")


@dataclass(frozen=True)
class ApiRound:
    organization_id: uuid.UUID
    round_id: uuid.UUID
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return f"/v1/rounds/{self.round_id}/responses"


def _ok(response: httpx.Response, status: int = 200) -> Any:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:500]}")
    return response.json()


async def new_organisation(
    client: httpx.AsyncClient, server: Server, org: SyntheticOrg
) -> tuple[uuid.UUID, dict[str, str]]:
    """An organisation with the synthetic org chart, through the API; (id, auth headers)."""
    created = _ok(
        await client.post(
            "/v1/organizations",
            json={"name": f"bench-{uuid.uuid4().hex[:8]}", "min_group_size": 5},
            headers={"Authorization": f"Bearer {server.operator_token}"},
        ),
        201,
    )
    headers = {"Authorization": f"Bearer {created['api_key']['key']}"}
    _ok(await client.put("/v1/units", json=to_units_payload(org), headers=headers))
    return uuid.UUID(created["id"]), headers


async def open_round(
    client: httpx.AsyncClient, organization: tuple[uuid.UUID, dict[str, str]], name: str
) -> ApiRound:
    organization_id, headers = organization
    body = _ok(await client.post("/v1/rounds", json={"name": name}, headers=headers), 201)
    return ApiRound(organization_id, uuid.UUID(body["id"]), headers)


async def post_batches(
    client: httpx.AsyncClient, target: ApiRound, bodies: list[bytes], concurrency: int
) -> float:
    """Post every body, `concurrency` at a time; seconds until the last one has committed."""
    pending = iter(bodies)
    headers = {**target.headers, "Content-Type": "application/json"}

    async def worker() -> None:
        for body in pending:  # a shared iterator: each body is taken by one worker
            _ok(await client.post(target.path, content=body, headers=headers))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started
