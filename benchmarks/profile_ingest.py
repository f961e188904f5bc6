"""Where the REST ingest's time goes: `.venv/bin/python benchmarks/profile_ingest.py`.

Not part of `make bench`. Runs the real API (as the ingest benchmark does) with the garbage
collector instrumented through `gc.callbacks` (nothing else is changed), posts the same batches
once, and reports the CPU time of the API process, of its Postgres backends and of the client,
and how many collections of each generation the API ran and how long they took.

    --respondents N   how many respondents to post (default 10,000)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import orjson  # noqa: E402
import psutil  # noqa: E402

from benchmarks import ingest  # noqa: E402
from benchmarks.common import (  # noqa: E402
    BenchConfig,
    fmt_rate,
    log,
    print_table,
    redis_url,
    scratch_database,
)
from coherence_core.synthetic import generate_organisation, to_api_batches  # noqa: E402

#: Run `coherence api` with a gc.callbacks hook that keeps per-generation counts and seconds in
#: the file named by BENCH_GC_STATS (rewritten every 0.1 s by a daemon thread).
GC_LAUNCHER = r"""
import gc, json, os, sys, threading, time
stats = {g: [0, 0.0] for g in range(3)}
started = [0.0]
def hook(phase, info):
    if phase == "start":
        started[0] = time.perf_counter()
    else:
        entry = stats[info["generation"]]
        entry[0] += 1
        entry[1] += time.perf_counter() - started[0]
gc.callbacks.append(hook)
def dump():
    path = os.environ["BENCH_GC_STATS"]
    while True:
        time.sleep(0.1)
        with open(path + ".tmp", "w") as f:
            json.dump(stats, f)
        os.replace(path + ".tmp", path)
threading.Thread(target=dump, daemon=True).start()
from coherence_core.cli import main
sys.exit(main(sys.argv[1:]))
"""


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def read_gc(path: Path) -> dict[str, list[float]]:
    time.sleep(0.3)  # let the dump thread catch up
    data: dict[str, list[float]] = json.loads(path.read_text())
    return data


async def backend_pids(config: BenchConfig) -> list[int]:
    connection = await asyncpg.connect(config.dsn)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        return [r["pid"] for r in rows]
    finally:
        await connection.close()


async def profile(config: BenchConfig, respondents: int) -> None:
    org = generate_organisation(
        n_respondents=respondents, n_units=ingest.N_UNITS, seed=11, resubmission_rate=0.0
    )
    bodies = [orjson.dumps(b) for b in to_api_batches(org, batch_size=ingest.BATCH_RESPONSES)]
    answers = len(org.answer_value)
    with tempfile.TemporaryDirectory() as scratch:
        stats_path = Path(scratch) / "gc.json"
        with ingest.api_server(
            config,
            max_body_bytes=32 * 2**20,
            max_batch=5000,
            launcher=("-c", GC_LAUNCHER),
            extra_env={"BENCH_GC_STATS": str(stats_path)},
        ) as server:
            async with httpx.AsyncClient(
                base_url=server.base_url,
                timeout=600,
                limits=httpx.Limits(max_connections=ingest.CONCURRENCY),
            ) as client:
                organisation = await ingest.new_organisation(client, server, org)
                warmup = await ingest.open_round(client, organisation, "warm-up")
                target = await ingest.open_round(client, organisation, "profile")
                await ingest.post_batches(client, warmup, bodies[: ingest.CONCURRENCY], 4)
                backends = await backend_pids(config)
                gc_before = read_gc(stats_path)
                me = psutil.Process()
                cpu_before = (
                    cpu_seconds([server.process.pid]),
                    cpu_seconds(backends),
                    me.cpu_times().user + me.cpu_times().system,
                )
                seconds = await ingest.post_batches(client, target, bodies, ingest.CONCURRENCY)
                cpu_after = (
                    cpu_seconds([server.process.pid]),
                    cpu_seconds(backends),
                    me.cpu_times().user + me.cpu_times().system,
                )
                gc_after = read_gc(stats_path)
    server_cpu, postgres_cpu, client_cpu = (
        a - b for a, b in zip(cpu_after, cpu_before, strict=True)
    )
    rows = [
        ["answers", f"{answers:,}"],
        ["wall time", f"{seconds:.2f} s ({fmt_rate(answers / seconds)})"],
        ["API process CPU", f"{server_cpu:.2f} s ({server_cpu / answers * 1e6:.2f} µs/answer)"],
        [f"Postgres backends CPU ({len(backends)} backends)", f"{postgres_cpu:.2f} s"],
        ["client CPU (this process)", f"{client_cpu:.2f} s"],
    ]
    gc_total = 0.0
    for generation in ("0", "1", "2"):
        count = gc_after[generation][0] - gc_before[generation][0]
        spent = gc_after[generation][1] - gc_before[generation][1]
        gc_total += spent
        rows.append([f"API: gen{generation} collections", f"{count:,.0f}, {spent:.2f} s"])
    rows.append(["API: share of its CPU in the collector", f"{gc_total / server_cpu:.0%}"])
    print_table("REST ingest profile (one run, API with gc.callbacks)", ["what", "value"], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--respondents", type=int, default=10_000)
    args = parser.parse_args()
    with scratch_database() as (url, app_url):
        config = BenchConfig(
            quick=False, database_url=url, redis_url=redis_url(), app_database_url=app_url
        )
        log(f"profiling REST ingest of {args.respondents:,} respondents")
        asyncio.run(profile(config, args.respondents))
    return 0


if __name__ == "__main__":
    sys.exit(main())
