"""Random and malformed batches, in all three formats, never get a 5xx; failures store nothing."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.api.support import new_org, open_round, put_units

UNITS = ["fin", "it", "hr"]
ITEMS = ["ps_safe_risk", "rl_frame_direction", "rc_timely", "rc_accurate", "bogus", ""]

scalar = st.one_of(
    st.none(),
    st.integers(-3, 9),
    st.booleans(),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)
item_map = st.dictionaries(st.sampled_from(ITEMS) | st.text(max_size=4), scalar, max_size=5)
response = st.fixed_dictionaries(
    {},
    optional={
        "respondent": st.sampled_from(["a", "b", "c"]) | st.text(max_size=6) | st.integers(),
        "unit": st.sampled_from([*UNITS, "nope"]) | st.none() | st.integers(),
        "answers": item_map | st.lists(st.integers(), max_size=2) | st.none(),
        "about": st.dictionaries(
            st.sampled_from([*UNITS, "x"]), item_map | st.integers(), max_size=3
        )
        | st.text(max_size=3),
        "extra": st.integers(),
    },
)
responses = st.lists(response | st.integers() | st.text(max_size=3), max_size=6)


def encode(kind: str, batch: list) -> tuple[str, bytes]:
    if kind == "json":
        return "application/json", json.dumps({"responses": batch}).encode()
    if kind == "ndjson":
        return "application/x-ndjson", "\n".join(json.dumps(r) for r in batch).encode()
    rows = ["respondent,unit,target,item,value"]
    for r in batch:
        if not isinstance(r, dict):
            rows.append(str(r))
            continue
        answers = r.get("answers") if isinstance(r.get("answers"), dict) else {}
        for item, value in answers.items():
            rows.append(
                f"{r.get('respondent')},{r.get('unit')},,{item},{'' if value is None else value}"
            )
        about = r.get("about") if isinstance(r.get("about"), dict) else {}
        for target, items in about.items():
            for item, value in (items if isinstance(items, dict) else {}).items():
                rows.append(f"{r.get('respondent')},{r.get('unit')},{target},{item},{value}")
    return "text/csv", "\n".join(rows).encode()


garbage = st.binary(max_size=200)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(kind=st.sampled_from(["json", "ndjson", "csv"]), batch=responses, raw=st.none() | garbage)
async def test_no_batch_ever_gets_a_5xx(client: httpx.AsyncClient, admin_engine, kind, batch, raw):
    state = _STATE.get("round")
    if state is None:
        org = await new_org(client)
        await put_units(client, org, [{"external_id": u, "name": u} for u in UNITS])
        state = _STATE["round"] = (org, (await open_round(client, org))["id"])
    org, round_id = state
    content_type, body = encode(kind, batch)
    if raw is not None:
        body = raw
    before = await _version(admin_engine, round_id)
    response = await client.post(
        f"/v1/rounds/{round_id}/responses",
        content=body,
        headers={**org.headers, "content-type": content_type},
    )
    assert response.status_code < 500, response.text
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        problem = response.json()
        assert problem["errors"], problem
        assert await _version(admin_engine, round_id) == before  # nothing stored


_STATE: dict = {}


async def _version(engine, round_id: str) -> int:
    async with engine.connect() as connection:
        return (
            await connection.execute(
                text("SELECT input_version FROM round WHERE id = :r"), {"r": round_id}
            )
        ).scalar_one()
