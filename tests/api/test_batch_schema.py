"""The published batch schema and the fast validator accept and refuse the same batches.

Batches are generated from the `ResponsesBatch` schema in the OpenAPI document, then mutated (a
value of another type, a field removed or added, anywhere in the batch). JSON Schema decides
whether each is valid, and `parsing` + `validation` must agree, checked against the round the
batch was written for: every unit it names is in the round, every item key it sends under
`answers` is asked once and under `about` per target unit, with any integer accepted. The one
rule JSON Schema cannot state, that a respondent appears once per batch, is added to its verdict.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from coherence_api.app import create_app
from coherence_api.errors import InvalidInput
from coherence_api.responses.parsing import parse_json_batch
from coherence_api.responses.validation import ItemRule, RoundContext, validate_batch
from coherence_core.settings import Settings

INT64 = (-(2**63), 2**63 - 1)


def published_schema() -> dict[str, Any]:
    app = create_app(
        Settings(
            DATABASE_URL="postgresql://unused/unused",
            REDIS_URL="redis://unused",
            COHERENCE_ADMIN_TOKEN="unused",
            COHERENCE_SECRET_KEY="unused",
        )
    )
    components = app.openapi()["components"]
    return {**components["schemas"]["ResponsesBatch"], "components": components}


SCHEMA = published_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


class AnyUnit(dict[str, int]):
    """Every unit a batch names is in its round."""

    def get(self, key: Any, default: Any = None) -> int:
        return 0


class AnyInteger(frozenset[int]):
    def __contains__(self, value: object) -> bool:
        return type(value) is int


def written_for(document: Any) -> RoundContext | None:
    """The round the batch was written for; None when it sends one item key both ways."""
    once: set[str] = set()
    per_target: set[str] = set()
    responses = document.get("responses") if isinstance(document, dict) else None
    for response in responses if isinstance(responses, list) else []:
        if not isinstance(response, dict):
            continue
        if isinstance(response.get("answers"), dict):
            once |= set(response["answers"])
        if isinstance(response.get("about"), dict):
            for items in response["about"].values():
                if isinstance(items, dict):
                    per_target |= set(items)
    if once & per_target:
        return None
    accepted = AnyInteger({1})
    items = {key: ItemRule(index=0, per_target=False, accepted=accepted) for key in once}
    items |= {key: ItemRule(index=0, per_target=True, accepted=accepted) for key in per_target}
    return RoundContext(unit_index=AnyUnit(), items=items)


def schema_accepts(document: Any) -> bool:
    if not VALIDATOR.is_valid(document):
        return False
    respondents = [r["respondent"] for r in document["responses"]]
    return len(set(respondents)) == len(respondents)


def validator_accepts(body: bytes, context: RoundContext) -> bool:
    try:
        raws = parse_json_batch(body, max_responses=10_000)
    except InvalidInput:
        return False
    batch, errors = validate_batch(raws, context)
    assert (batch is None) == bool(errors)
    return batch is not None


# Any JSON value but numbers JSON Schema would count as integers while JSON has them as floats
# (4.0): the validator takes integers as sent, the schema by value.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(*INT64)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer())
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """`document` with one change somewhere: a value replaced, a field dropped or added."""
    document = orjson.loads(orjson.dumps(document))
    path = draw(st.sampled_from(paths(document)))
    if not path:
        return draw(JSON_VALUES)
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    change = draw(st.sampled_from(["replace", "drop", "add"]))
    if change == "drop" and isinstance(parent, dict):
        del parent[last]
    elif change == "add" and isinstance(parent, dict):
        parent[draw(st.text(max_size=12))] = draw(JSON_VALUES)
    else:
        parent[last] = draw(JSON_VALUES)
    return document


def check(document: Any) -> None:
    try:
        body = orjson.dumps(document)
    except orjson.JSONEncodeError:  # integers beyond 64 bits: not JSON any parser here reads
        assume(False)
    context = written_for(document)
    assume(context is not None)
    assert context is not None
    assert validator_accepts(body, context) == schema_accepts(document), document


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid by `schema`, for the JSON Schema keywords the published schema uses."""
    if "$ref" in schema:
        return from_schema(SCHEMA["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]])
    if "anyOf" in schema:
        return st.one_of([from_schema(option) for option in schema["anyOf"]])
    kind = schema["type"]
    if kind == "null":
        return st.none()
    if kind == "integer":
        return st.integers(*INT64)
    if kind == "string":
        text = st.text(min_size=schema.get("minLength", 0), max_size=schema.get("maxLength", 40))
        pattern = schema.get("pattern")
        return text.filter(lambda s: re.search(pattern, s) is not None) if pattern else text
    if kind == "array":
        return st.lists(from_schema(schema["items"]), max_size=4)
    assert kind == "object", schema
    properties = schema.get("properties", {})
    required = set(schema.get("required", ()))
    fixed = st.fixed_dictionaries(
        {k: from_schema(v) for k, v in properties.items() if k in required},
        optional={k: from_schema(v) for k, v in properties.items() if k not in required},
    )
    extra = schema.get("additionalProperties", True)
    if extra is False:
        return fixed
    values = JSON_VALUES if extra is True else from_schema(extra)
    more = st.dictionaries(st.text(max_size=8), values, max_size=4)
    return st.tuples(more, fixed).map(lambda both: {**both[0], **both[1]})


BATCHES = from_schema(SCHEMA)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@FAST
@given(BATCHES)
def test_batches_valid_by_the_schema_are_valid_for_the_validator(document: Any) -> None:
    check(document)


@FAST
@given(BATCHES.flatmap(mutated))
def test_mutated_batches_are_refused_or_accepted_by_both(document: Any) -> None:
    check(document)


@pytest.mark.parametrize(
    ("document", "accepted"),
    [
        ({"responses": []}, True),
        ({"responses": [{"respondent": "a", "unit": "u", "answers": None}]}, True),
        ({"responses": [{"respondent": "a", "unit": "u", "extra": 1}]}, False),
        ({"responses": [], "extra": 1}, False),
        ({"responses": [{"respondent": " ", "unit": "u"}]}, False),
        ({"responses": [{"respondent": "a" * 256, "unit": "u"}]}, False),
        ({"responses": [{"respondent": "a", "unit": "u"}] * 2}, False),
        ({"responses": [{"respondent": "a", "unit": "u", "answers": {"q": True}}]}, False),
    ],
)
def test_known_cases(document: Any, accepted: bool) -> None:
    context = written_for(document)
    assert context is not None
    assert schema_accepts(document) is accepted
    assert validator_accepts(orjson.dumps(document), context) is accepted
