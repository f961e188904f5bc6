"""The embedded services behind `coherence run`, and the run command itself."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
import redis.asyncio as aioredis
from arq.connections import RedisSettings, create_pool

from coherence_core import devstack
from tests.infra import run_async


def test_ensure_secret_prefers_environment_then_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COHERENCE_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("COHERENCE_SECRET_KEY", raising=False)
    token = devstack.ensure_secret(tmp_path / "state", "admin-token")
    path = tmp_path / "state" / "admin-token"
    assert path.read_text().strip() == token and len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert devstack.ensure_secret(tmp_path / "state", "admin-token") == token
    assert devstack.ensure_secret(tmp_path / "state", "secret-key") != token

    monkeypatch.setenv("COHERENCE_ADMIN_TOKEN", "from-env")
    assert devstack.ensure_secret(tmp_path / "state", "admin-token") == "from-env"
    assert path.read_text().strip() == token


def test_state_dir_lock_is_exclusive(tmp_path: Path) -> None:
    with devstack.lock_state_dir(tmp_path), pytest.raises(devstack.StateDirBusy):
        devstack.lock_state_dir(tmp_path)
    devstack.lock_state_dir(tmp_path).close()  # released


def _gone(pid: int) -> bool:
    """Exits within a few seconds (a zombie counts: pid 1 of a container may reap late)."""
    return devstack._wait_gone(pid, timeout=10)


async def _write(database_url: str, redis_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval("SELECT 1") == 1
        await connection.execute("CREATE TABLE kept (note text)")
        await connection.execute("INSERT INTO kept VALUES ('before restart')")
    finally:
        await connection.close()
    arq = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        assert await arq.ping()
        await arq.set("kept", "before restart")
    finally:
        await arq.aclose()


async def _read(database_url: str, redis_url: str) -> tuple[str, bytes | None]:
    connection = await asyncpg.connect(database_url)
    try:
        note = await connection.fetchval("SELECT note FROM kept")
    finally:
        await connection.close()
    client = aioredis.Redis.from_url(redis_url)
    try:
        return note, await client.get("kept")
    finally:
        await client.aclose()


def test_embedded_services_keep_data_across_restarts(tmp_path: Path) -> None:
    # A state folder too deep for unix sockets inside it: both servers must cope.
    state_dir = tmp_path / ("deep" * 25) / "state"
    postgres, redis = devstack.EmbeddedPostgres(state_dir), devstack.EmbeddedRedis(state_dir)
    try:
        database_url, redis_url = postgres.start(), redis.start()
        assert database_url.startswith("postgresql://") and redis_url.startswith("unix://")
        assert len(redis_url.removeprefix("unix://")) <= 107
        run_async(lambda: _write(database_url, redis_url))
        postgres_pid = postgres._server.get_pid()
    finally:
        redis.stop()
        postgres.stop()
    assert _gone(postgres_pid)
    assert not Path(redis_url.removeprefix("unix://")).exists()
    assert (state_dir / "postgres" / "PG_VERSION").exists()
    assert any((state_dir / "redis").iterdir())

    # A stale postmaster.pid naming a live, unrelated process must not fool the restart.
    (state_dir / "postgres" / "postmaster.pid").write_text(f"{os.getpid()}\n" + "\n" * 7)
    try:
        database_url, redis_url = postgres.start(), redis.start()
        kept = run_async(lambda: _read(database_url, redis_url))
        assert kept == ("before restart", b"before restart")
    finally:
        redis.stop()
        postgres.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.slow  # ~7 s: boots Postgres, Redis, the API and a worker
@pytest.mark.skipif(
    importlib.util.find_spec("coherence_api.app") is None
    or importlib.util.find_spec("coherence_scoring.worker") is None,
    reason="the API app or the scoring worker module does not exist yet",
)
def test_coherence_run_serves_docs_and_stops_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(COHERENCE_STATE_DIR=str(tmp_path / "state"), COHERENCE_PORT=str(port))
    env.pop("COHERENCE_ADMIN_TOKEN", None)
    run = subprocess.Popen(
        [sys.executable, "-m", "coherence_core.cli", "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and run.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        else:
            pytest.fail(f"`coherence run` did not serve /docs:\n{run.communicate(timeout=30)[0]}")
        children = psutil.Process(run.pid).children(recursive=True)
        request_id = uuid.uuid4().hex
        problem = httpx.get(
            f"http://127.0.0.1:{port}/v1/units", headers={"X-Request-ID": request_id}
        )
        time.sleep(1)  # `coherence run` exits as soon as its API or worker dies
        if run.poll() is not None or len(children) < 2:
            pytest.fail(f"the API or the worker died:\n{run.communicate(timeout=60)[0]}")
        # The API works as the embedded application role, under row-level security.
        operator = (tmp_path / "state" / "admin-token").read_text().strip()
        created = httpx.post(
            f"http://127.0.0.1:{port}/v1/organizations",
            json={"name": "embedded"},
            headers={"Authorization": f"Bearer {operator}"},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        key = {"Authorization": f"Bearer {created.json()['api_key']['key']}"}
        units = httpx.get(f"http://127.0.0.1:{port}/v1/units", headers=key, timeout=10)
        assert units.status_code == 200 and units.json()["items"] == [], units.text
        run.send_signal(signal.SIGTERM)
        output = run.communicate(timeout=60)[0]
    finally:
        if run.poll() is None:  # a failed assertion: still stop the embedded servers
            run.send_signal(signal.SIGTERM)
            try:
                run.wait(60)
            except subprocess.TimeoutExpired:
                run.kill()
                run.wait()
    assert run.returncode == 0, output
    token = (tmp_path / "state" / "admin-token").read_text().strip()
    assert f"http://127.0.0.1:{port}/docs" in output and token in output
    assert all(_gone(child.pid) for child in children)
    assert not (tmp_path / "state" / "postgres" / "postmaster.pid").exists()

    # Not a terminal: every process logs JSON lines, its own and its libraries' (the banner
    # with the token is the one thing printed for people, on stdout).
    assert problem.status_code == 401 and problem.json()["request_id"] == request_id
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    loggers = {line["logger"] for line in lines}
    assert {"coherence_core.cli", "uvicorn.error", "arq.worker"} <= loggers, output
    access = [line for line in lines if line.get("request_id") == request_id]
    assert [(line["event"], line["status"], line["route"]) for line in access] == [
        ("http.request", 401, "/v1/units")
    ], output
