"""Shared pieces of the benchmarks: the scratch database, timing, memory sampling, tables."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg
import psutil

from coherence_core.db.migrate import upgrade
from coherence_core.db.session import asyncpg_dsn

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class BenchConfig:
    quick: bool
    #: plain postgresql:// URL of the (migrated) bench database as its owner (a superuser):
    #: set-up, baselines, and the worker's sweeps
    database_url: str
    redis_url: str
    #: the application role, as deployed: the API and the scoring job run under row-level
    #: security (defaults to `database_url`)
    app_database_url: str | None = None

    @property
    def dsn(self) -> str:
        return asyncpg_dsn(self.database_url)

    @property
    def app_url(self) -> str:
        return self.app_database_url or self.database_url


def log(message: str) -> None:
    """Progress goes to stderr, so stdout holds only the tables."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ scratch database


def _with_database(url: str, database: str) -> str:
    return urlsplit(url)._replace(path=f"/{database}").geturl()


async def _admin(admin_url: str, *statements: tuple[str, tuple[Any, ...]]) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(admin_url), timeout=10)
    try:
        for sql, args in statements:
            await connection.execute(sql, *args)
    finally:
        await connection.close()


@contextlib.contextmanager
def scratch_database() -> Iterator[tuple[str, str]]:
    """A migrated database, as (owner URL, application role URL): `BENCH_DATABASE_URL` as is
    (one role for both), else a fresh `coherence_bench_<hex>` on the local server
    (`BENCH_POSTGRES_ADMIN_URL`, a superuser) with an application role `<name>_app`, both
    dropped at the end."""
    # Imported here: the job before issue 7 imports this module with that revision's libs first.
    from coherence_core.db.roles import url_for_role

    if url := os.environ.get("BENCH_DATABASE_URL"):
        upgrade(url)
        yield url, url
        return
    admin_url = os.environ.get("BENCH_POSTGRES_ADMIN_URL", DEFAULT_ADMIN_URL)
    name = f"coherence_bench_{uuid.uuid4().hex[:12]}"
    app_role = f"{name}_app"
    asyncio.run(
        _admin(
            admin_url,
            (f'CREATE ROLE "{app_role}" LOGIN', ()),
            (f'CREATE DATABASE "{name}"', ()),
        )
    )
    log(f"scratch database {name}, application role {app_role}")
    try:
        url = _with_database(admin_url, name)
        upgrade(url, app_role=app_role)
        yield url, url_for_role(url, app_role)
    finally:
        asyncio.run(
            _admin(
                admin_url,
                (
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = $1 AND pid <> pg_backend_pid()",
                    (name,),
                ),
                (f'DROP DATABASE IF EXISTS "{name}"', ()),
                (f'DROP ROLE IF EXISTS "{app_role}"', ()),
            )
        )
        log(f"dropped {name}")


def redis_url() -> str:
    return os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)


async def server_version(dsn: str) -> str:
    connection = await asyncpg.connect(dsn)
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


# ----------------------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Timed:
    best: float
    runs: list[float]

    def __str__(self) -> str:
        return f"{fmt_s(self.best)} (runs: {', '.join(fmt_s(r) for r in self.runs)})"


def timed(function: Callable[[], object]) -> float:
    """Seconds one call takes."""
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def best_of(n: int, function: Callable[[], object]) -> Timed:
    runs = []
    for _ in range(n):
        started = time.perf_counter()
        function()
        runs.append(time.perf_counter() - started)
    return Timed(min(runs), runs)


async def abest_of(n: int, function: Callable[[], Awaitable[object]]) -> Timed:
    runs = []
    for _ in range(n):
        started = time.perf_counter()
        await function()
        runs.append(time.perf_counter() - started)
    return Timed(min(runs), runs)


# ----------------------------------------------------------------------------------------- memory


class PeakRss:
    """Samples a process's resident set size in a thread; `peak` is the largest seen."""

    def __init__(self, pid: int, interval: float = 0.002) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.start = self.peak = self.end = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _rss(self) -> int:
        return int(self.process.memory_info().rss)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRss:
        self.start = self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.end = self._rss()
        self.peak = max(self.peak, self.end, self.high_water_mark())

    def high_water_mark(self) -> int:
        """The kernel's peak RSS of the process (VmHWM), which sampling can miss; 0 if unknown."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    @property
    def delta(self) -> int:
        return self.peak - self.start


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ----------------------------------------------------------------------------------------- format


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fmt_rate(per_second: float, what: str = "answers/s") -> str:
    return f"{per_second:,.0f} {what}"


def fmt_mib(size: float) -> str:
    return f"{size / 2**20:,.1f} MiB"


def fmt_int(value: int) -> str:
    return f"{value:,}"


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def print_table(title: str, headers: list[str], rows: list[list[str]], note: str = "") -> None:
    print(f"\n### {title}\n")
    print(markdown_table(headers, rows))
    if note:
        print(f"\n{note}")
    print(flush=True)


# ---------------------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class Goal:
    """One line of the final summary: a measured ratio against its goal."""

    measure: str
    value: str
    baseline: str
    ratio: float
    op: str  # "<=" or ">="
    target: float

    @property
    def met(self) -> bool:
        return self.ratio <= self.target if self.op == "<=" else self.ratio >= self.target

    def row(self) -> list[str]:
        goal = f"{'≤' if self.op == '<=' else '≥'} {self.target:g}×"
        return [
            self.measure,
            self.value,
            self.baseline,
            f"{self.ratio:.2f}×",
            goal,
            "yes" if self.met else "**no (missed)**",
        ]


def print_summary(goals: list[Goal]) -> None:
    if not goals:
        print("\n### Summary\n\nNo goals measured in this run.\n")
        return
    print_table(
        "Summary",
        ["measure", "value", "baseline", "ratio", "goal", "met"],
        [g.row() for g in goals],
    )
