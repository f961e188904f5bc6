from __future__ import annotations

import copy

import httpx

from tests.api.support import Org, open_round, put_units

CUSTOM = {
    "key": "pulse-v1",
    "name": {"en": "Pulse", "nb": "Puls"},
    "scales": [
        {
            "key": "collaboration",
            "targeting": "unit",
            "response_min": 1,
            "response_max": 5,
            "subscales": [{"key": "contact", "name": {"en": "Contact"}}],
            "items": [
                {
                    "key": "co_frequency",
                    "subscale": "contact",
                    "recode": {"1": 1, "2": 3, "3": 5, "4": 3, "5": 1},
                    "text": {"en": "How often do you talk with this unit?"},
                },
                {"key": "co_help", "subscale": "contact", "text": {"en": "They help us."}},
            ],
        },
        {
            "key": "climate",
            "targeting": "self",
            "response_min": 0,
            "response_max": 10,
            "items": [
                {"key": "cl_safe", "text": {"en": "I feel safe."}},
                {"key": "cl_blame", "reversed": True, "text": {"en": "People blame."}},
            ],
        },
    ],
}


async def test_create_list_and_use_a_custom_instrument(client: httpx.AsyncClient, org: Org):
    created = await client.post("/v1/instruments", json=CUSTOM, headers=org.headers)
    assert created.status_code == 201, created.text
    keys = [
        i["key"] for i in (await client.get("/v1/instruments", headers=org.headers)).json()["items"]
    ]
    assert keys == ["coherence-v1", "pulse-v1"]
    again = await client.post("/v1/instruments", json=CUSTOM, headers=org.headers)
    assert again.status_code == 409  # immutable: a new version needs a new key

    await put_units(
        client, org, [{"external_id": "a", "name": "A"}, {"external_id": "b", "name": "B"}]
    )
    round_ = await open_round(client, org, instrument="pulse-v1")
    assert round_["instrument"] == "pulse-v1"
    url = f"/v1/rounds/{round_['id']}/responses"
    ok = {
        "responses": [
            {
                "respondent": "p1",
                "unit": "a",
                "answers": {"cl_safe": 0, "cl_blame": 10},
                "about": {"b": {"co_frequency": 2, "co_help": 4}},
            }
        ]
    }
    assert (await client.post(url, json=ok, headers=org.headers)).status_code == 200
    bad = {
        "responses": [
            {"respondent": "p2", "unit": "a", "answers": {"cl_safe": 11, "ps_safe_risk": 3}},
        ]
    }
    response = await client.post(url, json=bad, headers=org.headers)
    assert response.status_code == 422
    assert sorted(e["pointer"] for e in response.json()["errors"]) == [
        "/responses/0/answers/cl_safe",
        "/responses/0/answers/ps_safe_risk",  # a coherence-v1 item: not in this instrument
    ]


async def test_custom_instruments_are_private(client: httpx.AsyncClient, org: Org):
    from tests.api.support import new_org

    await client.post("/v1/instruments", json=CUSTOM, headers=org.headers)
    other = await new_org(client)
    assert (await client.get("/v1/instruments/pulse-v1", headers=other.headers)).status_code == 404


async def test_invalid_definitions_are_422_with_pointers(client: httpx.AsyncClient, org: Org):
    cases = []
    undefined_subscale = copy.deepcopy(CUSTOM)
    undefined_subscale["scales"][0]["items"][1]["subscale"] = "nope"
    cases.append((undefined_subscale, "/scales/0"))
    duplicate_item = copy.deepcopy(CUSTOM)
    duplicate_item["scales"][1]["items"][1]["key"] = "co_help"
    cases.append((duplicate_item, ""))
    recode_out_of_range = copy.deepcopy(CUSTOM)
    recode_out_of_range["scales"][0]["items"][0]["recode"] = {"1": 9}
    cases.append((recode_out_of_range, "/scales/0"))
    bad_targeting = copy.deepcopy(CUSTOM)
    bad_targeting["scales"][0]["targeting"] = "everyone"
    cases.append((bad_targeting, "/scales/0/targeting"))
    bad_key = copy.deepcopy(CUSTOM)
    bad_key["scales"][1]["items"][0]["key"] = "Bad Key!"
    cases.append((bad_key, "/scales/1/items/0/key"))
    reserved = copy.deepcopy(CUSTOM)
    reserved["scales"][1]["key"] = "coherence"
    cases.append((reserved, ""))
    builtin = copy.deepcopy(CUSTOM)
    builtin["key"] = "coherence-v1"
    for body, pointer in cases:
        response = await client.post("/v1/instruments", json=body, headers=org.headers)
        assert response.status_code == 422, (pointer, response.text)
        assert response.json()["errors"][0]["pointer"] == pointer, response.json()
        assert response.json()["errors"][0]["detail"]
    assert (
        await client.post("/v1/instruments", json=builtin, headers=org.headers)
    ).status_code == 409
