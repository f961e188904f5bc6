"""Whole-batch validation of responses against a round's instrument and frozen units.

Every body format (JSON now; NDJSON and CSV parse into the same `RawResponse`s) goes through
`validate_batch`, which reports every error it finds, each located by a JSON pointer (or line),
and returns normalised submissions only when there is none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from coherence_core.db.models.surveys import NO_TARGET
from coherence_core.instruments import InstrumentDefinition

MAX_RESPONDENT_ID_LENGTH = 255
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
    #: (target_idx or NO_TARGET, item_idx, value or None)
    answers: list[tuple[int, int, int | None]] = field(default_factory=list)


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


def _check_value(
    value: Any, rule: ItemRule, errors: BatchErrors, location: dict[str, Any]
) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(location, f"must be an integer or null, not {type(value).__name__}")
        return None
    if value not in rule.accepted:
        low, high = min(rule.accepted), max(rule.accepted)
        errors.add(location, f"{value} is outside the item's range {low}..{high}")
        return None
    return value


def _check_items(
    items: Any,
    *,
    target_idx: int,
    context: RoundContext,
    errors: BatchErrors,
    locate: Locator,
    path: tuple[object, ...],
    out: list[tuple[int, int, int | None]],
) -> None:
    if not isinstance(items, dict):
        errors.add(locate(*path), "must be an object of item → value")
        return
    per_target = target_idx != NO_TARGET
    for key, value in items.items():
        rule = context.items.get(key)
        where = locate(*path, key)
        if rule is None:
            errors.add(where, f"unknown item '{key}'")
        elif rule.per_target != per_target:
            errors.add(
                where,
                f"item '{key}' is asked per target unit: send it under 'about'"
                if rule.per_target
                else f"item '{key}' is asked once: send it under 'answers'",
            )
        else:
            checked = _check_value(value, rule, errors, where)
            if value is None or checked is not None:
                out.append((target_idx, rule.index, checked))


def _check_response(
    raw: RawResponse, context: RoundContext, errors: BatchErrors
) -> Submission | None:
    data, locate = raw.data, raw.locate
    if not isinstance(data, dict):
        errors.add(locate(), "must be an object with respondent, unit, answers and about")
        return None
    before = len(errors.errors)
    for key in data.keys() - {"respondent", "unit", "answers", "about"}:
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
    answers: list[tuple[int, int, int | None]] = []
    if data.get("answers") is not None:
        _check_items(
            data["answers"],
            target_idx=NO_TARGET,
            context=context,
            errors=errors,
            locate=locate,
            path=("answers",),
            out=answers,
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
                target_idx=target_idx,
                context=context,
                errors=errors,
                locate=locate,
                path=("about", target),
                out=answers,
            )
    if len(errors.errors) > before or unit_idx is None or not isinstance(respondent, str):
        return None
    return Submission(respondent=respondent, unit_idx=unit_idx, answers=answers)


def validate_batch(
    raws: Sequence[RawResponse], context: RoundContext
) -> tuple[list[Submission], list[dict[str, Any]]]:
    """(submissions, []) when the batch is valid, else ([], every error found)."""
    errors = BatchErrors()
    submissions: list[Submission] = []
    first_seen: dict[str, int] = {}
    for i, raw in enumerate(raws):
        submission = _check_response(raw, context, errors)
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
        if submission is not None:
            submissions.append(submission)
    if errors.errors:
        return [], errors.errors
    return submissions, []
