"""JSON, NDJSON and CSV forms of one batch are validated by one path and stored identically."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import text

from tests.api.support import Org, open_round, put_units

UNITS = [{"external_id": "fin", "name": "Finance"}, {"external_id": "it", "name": "IT"}]
RESPONSES = [
    {
        "respondent": "hr-1",
        "unit": "fin",
        "answers": {"ps_safe_risk": 4, "ps_hard_to_ask_help": None},
        "about": {"fin": {"rc_timely": 4}, "it": {"rc_timely": 2, "rc_accurate": None}},
    },
    {"respondent": "hr-2", "unit": "it", "answers": {"rl_frame_direction": 5}},
]


def as_ndjson(responses: list[dict]) -> bytes:
    return "\n".join(json.dumps(r) for r in responses).encode() + b"\n"


def as_csv(responses: list[dict]) -> bytes:
    lines = ["respondent,unit,target,item,value"]
    for r in responses:
        for item, value in r.get("answers", {}).items():
            lines.append(f"{r['respondent']},{r['unit']},,{item},{'' if value is None else value}")
        for target, items in r.get("about", {}).items():
            for item, value in items.items():
                lines.append(
                    f"{r['respondent']},{r['unit']},{target},{item},{'' if value is None else value}"
                )
    return ("\r\n".join(lines) + "\r\n").encode()


async def _stored(engine, round_id: str) -> list[tuple]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT encode(r.respondent_hash, 'hex'), r.unit_idx, a.target_idx, a.item_idx, "
                "a.value FROM answer a JOIN respondent r ON r.id = a.respondent_id "
                "WHERE a.round_id = :r ORDER BY 1, 3, 4"
            ),
            {"r": round_id},
        )
        return [tuple(row) for row in rows]


async def test_three_formats_store_the_same_answers(
    client: httpx.AsyncClient, org: Org, admin_engine
):
    await put_units(client, org, UNITS)
    stored = []
    for content_type, body in (
        ("application/json", json.dumps({"responses": RESPONSES}).encode()),
        ("application/x-ndjson", as_ndjson(RESPONSES)),
        ("text/csv; charset=utf-8", as_csv(RESPONSES)),
    ):
        round_ = await open_round(client, org)
        response = await client.post(
            f"/v1/rounds/{round_['id']}/responses",
            content=body,
            headers={**org.headers, "content-type": content_type},
        )
        assert response.status_code == 200, (content_type, response.text)
        assert response.json()["accepted"] == 2
        stored.append(await _stored(admin_engine, round_["id"]))
    assert stored[0] == stored[1] == stored[2]
    assert len(stored[0]) == 6


async def test_csv_errors_name_lines(client: httpx.AsyncClient, org: Org):
    await put_units(client, org, UNITS)
    round_ = await open_round(client, org)
    body = (
        b"respondent,unit,target,item,value\n"
        b"hr-1,fin,,ps_safe_risk,4\n"
        b"hr-1,fin,,ps_safe_risk,5\n"  # line 3: the same item twice
        b"hr-1,it,,ps_raise_problems,3\n"  # line 4: another home unit
        b"hr-2,fin,ghost,rc_timely,3\n"  # line 5: unknown target
        b"hr-2,fin,it,rc_timely,seven\n"  # line 6: not an integer
        b"hr-3,fin\n"  # line 7: too few columns
    )
    response = await client.post(
        f"/v1/rounds/{round_['id']}/responses",
        content=body,
        headers={**org.headers, "content-type": "text/csv"},
    )
    assert response.status_code == 422
    lines = sorted(e["line"] for e in response.json()["errors"])
    assert lines == [3, 4, 7]  # malformed rows first; the rest is validated once they parse


async def test_csv_value_errors_name_lines(client: httpx.AsyncClient, org: Org):
    await put_units(client, org, UNITS)
    round_ = await open_round(client, org)
    body = (
        b"respondent,unit,target,item,value\n"
        b"hr-1,fin,,ps_safe_risk,9\n"
        b"hr-2,fin,ghost,rc_timely,3\n"
        b"hr-2,fin,it,rc_timely,seven\n"
        b"hr-1,fin,,ps_raise_problems,3\n"  # hr-1 again, after hr-2: twice in the batch
    )
    response = await client.post(
        f"/v1/rounds/{round_['id']}/responses",
        content=body,
        headers={**org.headers, "content-type": "text/csv"},
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert sorted(e["line"] for e in errors) == [2, 3, 4, 5]
    assert {"line": 3, "column": "target"}.items() <= next(
        e for e in errors if e["line"] == 3
    ).items()


async def test_ndjson_errors_name_lines_and_pointers(client: httpx.AsyncClient, org: Org):
    await put_units(client, org, UNITS)
    round_ = await open_round(client, org)
    url = f"/v1/rounds/{round_['id']}/responses"
    headers = {**org.headers, "content-type": "application/x-ndjson"}
    malformed = b'{"respondent": "a", "unit": "fin"}\n{oops\n'
    response = await client.post(url, content=malformed, headers=headers)
    assert response.status_code == 422
    assert [e["line"] for e in response.json()["errors"]] == [2]
    invalid = b'{"respondent": "a", "unit": "fin"}\n\n{"respondent": "b", "unit": "fin", "answers": {"ps_safe_risk": 0}}\n'
    response = await client.post(url, content=invalid, headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "line": 3,
            "pointer": "/answers/ps_safe_risk",
            "detail": "0 is outside the item's range 1..5",
        }
    ]


async def test_csv_needs_its_header(client: httpx.AsyncClient, org: Org):
    await put_units(client, org, UNITS)
    round_ = await open_round(client, org)
    response = await client.post(
        f"/v1/rounds/{round_['id']}/responses",
        content=b"a,b,c\n1,2,3\n",
        headers={**org.headers, "content-type": "text/csv"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["line"] == 1
