"""The scoring job as it was before issue 7 (method 1, families of rules), run in the same bench
run as today's: the baseline of "the job must stay within 1.5× of today's job time".

`materialise(revision)` extracts that revision's `libs/` and `services/scoring/` with `git archive`
into a temporary folder (nothing is committed or built); `python -m benchmarks.baseline_job DIR
DATABASE_URL ROUND ORG REPEATS` then runs that code's `score_round` in a fresh process against the
bench database, bumping `round.input_version` before every run as the scoring section does, and
prints the best and every run's seconds as JSON. The two schemas are compatible: issue 7 only
added columns with defaults and new tables.
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT

#: The last commit before issue 7 (the job the 1.5× goal is measured against).
REVISION = "9bd47cb"


def materialise(revision: str = REVISION) -> tempfile.TemporaryDirectory[str]:
    folder = tempfile.TemporaryDirectory(prefix="coherence-baseline-")
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision, "libs", "services/scoring"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder.name, filter="data")
    return folder


def run_baseline(
    folder: str, database_url: str, round_id: str, organization_id: str, repeats: int
) -> list[float]:
    """That revision's job, ``repeats`` times in a fresh process: the seconds of each run."""
    env_path = f"{folder}/libs:{folder}/services/scoring"
    output = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path[:0] = sys.argv[1].split(':'); "
            "from benchmarks.baseline_job import child; child(sys.argv[2:])",
            env_path,
            database_url,
            round_id,
            organization_id,
            str(repeats),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [float(x) for x in json.loads(output)["runs"]]


def child(argv: list[str]) -> None:
    database_url, round_id, organization_id, repeats = argv
    # That revision named the job module `jobs` (now `score_round`); its copy is first on sys.path.
    import coherence_scoring.jobs as old_jobs

    assert Path(old_jobs.__file__).resolve().is_relative_to(Path(tempfile.gettempdir()))

    async def main() -> list[float]:
        import asyncpg

        from coherence_core.db.session import create_engine

        engine = create_engine(database_url, pool_size=2)
        dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
        runs = []
        try:
            for i in range(int(repeats) + 1):  # the first is a warm-up
                connection = await asyncpg.connect(dsn)
                await connection.execute(
                    "UPDATE round SET input_version = input_version + 1, "
                    "scoring_status = 'pending' WHERE id = $1::uuid",
                    round_id,
                )
                await connection.close()
                started = time.perf_counter()
                outcome = await old_jobs.score_round({"engine": engine}, round_id, organization_id)
                if outcome != "scored":
                    raise RuntimeError(f"the baseline job returned {outcome!r}")
                if i:
                    runs.append(time.perf_counter() - started)
        finally:
            await engine.dispose()
        return runs

    print(json.dumps({"runs": asyncio.run(main())}))
