"""The scoring job leaves one structured line with its phases and sizes, or one on failure."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from coherence_core.settings import Settings
from tests.api.support import Org, open_round, put_units, run_scoring
from tests.api.test_end_to_end import SMALL_UNITS, _person
from tests.log_capture import captured_logs

PHASES = ("load_s", "link_s", "compute_s", "write_s", "ledger_s")


async def _round_with_answers(client: httpx.AsyncClient, org: Org) -> str:
    await put_units(client, org, SMALL_UNITS)
    round_ = await open_round(client, org)
    people = [_person(i, "fin", 4, 5) for i in range(5)] + [
        _person(i, "it", 2, 3) for i in range(2)
    ]
    response = await client.post(
        f"/v1/rounds/{round_['id']}/responses", json={"responses": people}, headers=org.headers
    )
    assert response.status_code == 200, response.text
    return str(round_["id"])


async def test_a_scoring_job_logs_one_line_with_phases_and_sizes(
    client: httpx.AsyncClient, org: Org, app: FastAPI, settings: Settings, queue_name: str
):
    round_id = await _round_with_answers(client, org)
    with captured_logs() as logs:
        await run_scoring(app, settings, queue_name)
    lines = [line for line in logs.json_lines() if line.get("round_id") == round_id]
    finished = [line for line in lines if line["event"] == "scoring.job_finished"]
    assert len(finished) == 1, lines
    line = finished[0]
    assert line["logger"] == "coherence_scoring.score_round" and line["level"] == "info"
    assert line["organization_id"] == org.id and line["job_id"]
    assert line["outcome"] == "scored" and line["preview"] is True and line["input_version"] == 1
    assert all(isinstance(line[phase], float) and line[phase] >= 0 for phase in PHASES)
    assert line["respondents"] == 7 and line["units"] == 3
    assert line["answers"] == 7 * (4 + 5)  # four items asked once, five about fin
    assert line["rows"] > line["rows_hidden"] > 0  # it (2 people) is below k = 5
    assert {"atoms", "repair_rounds", "base_cells", "base_cells_hidden"} <= set(line)
    # arq's own lines come through the same handler
    assert any(entry["logger"].startswith("arq") for entry in logs.json_lines())

    closed = await client.post(f"/v1/rounds/{round_id}/close", headers=org.headers)
    assert closed.status_code == 202
    with captured_logs() as logs:
        await run_scoring(app, settings, queue_name)
    final = [
        line
        for line in logs.events("scoring.job_finished")
        if line.get("round_id") == round_id and line["outcome"] == "scored"
    ]
    assert len(final) == 1 and final[0]["preview"] is False


async def test_a_failed_scoring_job_logs_the_error(
    client: httpx.AsyncClient,
    org: Org,
    app: FastAPI,
    settings: Settings,
    queue_name: str,
    monkeypatch,
):
    from coherence_scoring import score_round as jobs

    def broken(scoring_input):
        raise ValueError("the engine broke")

    monkeypatch.setattr(jobs, "score", broken)
    round_id = await _round_with_answers(client, org)
    with captured_logs() as logs:
        await run_scoring(app, settings, queue_name)
    lines = [line for line in logs.json_lines() if line.get("round_id") == round_id]
    assert [line["event"] for line in lines if line["event"].startswith("scoring.")] == [
        "scoring.job_failed"
    ]
    failed = next(line for line in lines if line["event"] == "scoring.job_failed")
    assert failed["level"] == "error" and failed["outcome"] == "failed"
    assert failed["error"] == "ValueError: the engine broke"
    assert "ValueError: the engine broke" in failed["exception"]
    assert failed["organization_id"] == org.id and failed["preview"] is True
    assert failed["load_s"] >= 0 and failed["link_s"] >= 0 and "compute_s" not in failed
    round_ = (await client.get(f"/v1/rounds/{round_id}", headers=org.headers)).json()
    assert round_["scoring"]["status"] == "failed"
