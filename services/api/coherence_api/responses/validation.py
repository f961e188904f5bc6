"""Whole-batch validation of responses against a round's instrument and frozen units.

Every body format (JSON now; NDJSON and CSV parse into the same `RawResponse`s) goes through
`validate_batch`, which reports every error it finds, each located by a JSON pointer (or line),
and returns normalised submissions only when there is none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from coherence_api.responses.schemas import MAX_RESPONDENT_ID_LENGTH, RESPONSE_FIELDS
from coherence_core.db.models.surveys import NO_TARGET
from coherence_core.instruments import InstrumentDefinition

Locator = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class ItemRule:
    index: int
    per_target: bool
    accepted: frozenset[int]


@dataclass(frozen=True)
class RoundContext:
    """What validation needs to know about a round; immutable while the round exists."""

    unit_index: dict[str, int]
    items: dict[str, ItemRule]

    @classmethod
    def build(cls, instrument: InstrumentDefinition, unit_ids: Sequence[str]) -> RoundContext:
        items = {
            item.key: ItemRule(
                index=instrument.item_index[item.key],
                per_target=scale.targeting == "unit",
                accepted=instrument.accepted_values(item.key),
            )
            for scale, item in instrument.items
        }
        return cls(unit_index={u: i for i, u in enumerate(unit_ids)}, items=items)


@dataclass
class RawResponse:
    """One response as parsed from the body, and how to locate its parts in that body."""

    data: Any
    locate: Locator


@dataclass
class Submission:
    respondent: str
    unit_idx: int


@dataclass
class AnswerColumns:
    """Every answer of a batch as flat columns (cheap to build, and encoded for COPY in bulk).

    `respondent` is the position of the answer's submission in the batch; `value` is None for
    "don't know"."""

    respondent: list[int] = field(default_factory=list)
    target: list[int] = field(default_factory=list)
    item: list[int] = field(default_factory=list)
    value: list[int | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.item)


@dataclass
class ValidBatch:
    submissions: list[Submission]
    answers: AnswerColumns


class BatchErrors:
    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []

    def add(self, location: dict[str, Any], detail: str) -> None:
        self.errors.append({**location, "detail": detail})


def json_locator(*prefix: object) -> Locator:
    from coherence_api.errors import pointer

    def locate(*path: object) -> dict[str, Any]:
        return {"pointer": pointer(*prefix, *path)}

    return locate


def _value_error(value: Any, rule: ItemRule) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be an integer or null, not {type(value).__name__}"
    low, high = min(rule.accepted), max(rule.accepted)
    return f"{value} is outside the item's range {low}..{high}"


def _check_items(
    items: Any,
    *,
    position: int,
    target_idx: int,
    context: RoundContext,
    errors: BatchErrors,
    locate: Locator,
    path: tuple[object, ...],
    out: AnswerColumns,
) -> None:
    """Append the valid answers to `out`; locations are built only for errors (the hot loop)."""
    if not isinstance(items, dict):
        errors.add(locate(*path), "must be an object of item → value")
        return
    per_target = target_idx != NO_TARGET
    rules = context.items
    for key, value in items.items():
        rule = rules.get(key)
        if (
            rule is not None
            and rule.per_target is per_target
            and (value is None or (type(value) is int and value in rule.accepted))
        ):
            out.respondent.append(position)
            out.target.append(target_idx)
            out.item.append(rule.index)
            out.value.append(value)
        elif rule is None:
            errors.add(locate(*path, key), f"unknown item '{key}'")
        elif rule.per_target is not per_target:
            errors.add(
                locate(*path, key),
                f"item '{key}' is asked per target unit: send it under 'about'"
                if rule.per_target
                else f"item '{key}' is asked once: send it under 'answers'",
            )
        else:
            errors.add(locate(*path, key), _value_error(value, rule))


def _check_response(
    raw: RawResponse, position: int, context: RoundContext, errors: BatchErrors, out: AnswerColumns
) -> Submission | None:
    data, locate = raw.data, raw.locate
    if not isinstance(data, dict):
        errors.add(locate(), "must be an object with respondent, unit, answers and about")
        return None
    before = len(errors.errors)
    for key in data.keys() - RESPONSE_FIELDS:
        errors.add(locate(key), "unknown field")
    respondent = data.get("respondent")
    if not isinstance(respondent, str) or not respondent.strip():
        errors.add(locate("respondent"), "required: the sender's id for the person (a string)")
    elif len(respondent) > MAX_RESPONDENT_ID_LENGTH:
        errors.add(locate("respondent"), f"longer than {MAX_RESPONDENT_ID_LENGTH} characters")
    unit = data.get("unit")
    unit_idx = context.unit_index.get(unit) if isinstance(unit, str) else None
    if not isinstance(unit, str):
        errors.add(locate("unit"), "required: the home unit's external id (a string)")
    elif unit_idx is None:
        errors.add(locate("unit"), f"unit '{unit}' is not in this round")
    if data.get("answers") is not None:
        _check_items(
            data["answers"],
            position=position,
            target_idx=NO_TARGET,
            context=context,
            errors=errors,
            locate=locate,
            path=("answers",),
            out=out,
        )
    about = data.get("about")
    if about is not None and not isinstance(about, dict):
        errors.add(locate("about"), "must be an object of target unit → items")
    elif about:
        for target, items in about.items():
            target_idx = context.unit_index.get(target)
            if target_idx is None:
                errors.add(locate("about", target), f"target unit '{target}' is not in this round")
                continue
            _check_items(
                items,
                position=position,
                target_idx=target_idx,
                context=context,
                errors=errors,
                locate=locate,
                path=("about", target),
                out=out,
            )
    if len(errors.errors) > before or unit_idx is None or not isinstance(respondent, str):
        return None
    return Submission(respondent=respondent, unit_idx=unit_idx)


def validate_batch(
    raws: Sequence[RawResponse], context: RoundContext
) -> tuple[ValidBatch | None, list[dict[str, Any]]]:
    """(the valid batch, []) when every response is valid, else (None, every error found)."""
    errors = BatchErrors()
    submissions: list[Submission] = []
    answers = AnswerColumns()
    first_seen: dict[str, int] = {}
    for i, raw in enumerate(raws):
        respondent = raw.data.get("respondent") if isinstance(raw.data, dict) else None
        if isinstance(respondent, str):
            if respondent in first_seen:
                errors.add(
                    raw.locate("respondent"),
                    f"this respondent already appears in response {first_seen[respondent]} of "
                    "the batch; send one response per respondent",
                )
                continue
            first_seen[respondent] = i
        submission = _check_response(raw, len(submissions), context, errors, answers)
        if submission is not None and not errors.errors:
            submissions.append(submission)
    if errors.errors:
        return None, errors.errors
    return ValidBatch(submissions=submissions, answers=answers), []
