"""The instrument definition: scales, subscales, items, response ranges, reversal and recoding.

One model serves the built-in catalogue, custom instruments posted by organisations and the
scoring engine, so that scoring is driven by the definition and never by hard-coded item names.
"""

from __future__ import annotations

import math
import re
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

KEY_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
INSTRUMENT_KEY_PATTERN = r"^[a-z][a-z0-9_.-]{0,62}$"
LOCALE_PATTERN = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")

Targeting = Literal["unit", "self"]
LocalizedText = dict[str, str]

#: Scale keys with a meaning of their own in the coherence index (SCORING.md §3).
RELATIONAL_CAPACITY = "relational_capacity"
RELATIONAL_LEADERSHIP = "relational_leadership"
PSYCHOLOGICAL_SAFETY = "psychological_safety"
COHERENCE = "coherence"


def _check_locales(texts: LocalizedText, where: str) -> None:
    if not texts:
        raise ValueError(f"{where}: at least one locale is required")
    for locale, text in texts.items():
        if not LOCALE_PATTERN.match(locale):
            raise ValueError(f"{where}: {locale!r} is not a locale tag such as 'en' or 'nb'")
        if not text.strip():
            raise ValueError(f"{where}: the {locale!r} text is empty")


class Subscale(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=KEY_PATTERN)
    name: LocalizedText = Field(default_factory=dict)


class Item(BaseModel):
    """One question. `recode` maps raw answers to scored values before reversal."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=KEY_PATTERN)
    subscale: str | None = None
    reversed: bool = False
    recode: dict[int, int] | None = None
    text: LocalizedText


class Scale(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=KEY_PATTERN)
    targeting: Targeting
    response_min: int = Field(default=1, ge=0, le=100)
    response_max: int = Field(default=5, ge=1, le=100)
    name: LocalizedText = Field(default_factory=dict)
    subscales: list[Subscale] = Field(default_factory=list, max_length=50)
    items: list[Item] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _check(self) -> Scale:
        if self.response_max <= self.response_min:
            raise ValueError("response_max must be greater than response_min")
        subscale_keys = [s.key for s in self.subscales]
        if len(set(subscale_keys)) != len(subscale_keys):
            raise ValueError(f"scale {self.key!r}: subscale keys must be unique")
        used = set()
        for item in self.items:
            if item.subscale is not None:
                if item.subscale not in subscale_keys:
                    raise ValueError(
                        f"item {item.key!r}: subscale {item.subscale!r} is not defined "
                        f"in scale {self.key!r}"
                    )
                used.add(item.subscale)
            if self.subscales and item.subscale is None:
                raise ValueError(f"item {item.key!r}: scale {self.key!r} has subscales, name one")
            if item.recode is not None:
                for raw, scored in item.recode.items():
                    if not self.response_min <= scored <= self.response_max:
                        raise ValueError(
                            f"item {item.key!r}: recode value {scored} for {raw} is outside "
                            f"{self.response_min}..{self.response_max}"
                        )
        unused = [k for k in subscale_keys if k not in used]
        if unused:
            raise ValueError(f"scale {self.key!r}: subscales without items: {unused}")
        return self

    @property
    def options(self) -> int:
        """`A` in σ²_EU = (A² − 1)/12: the number of response options."""
        return self.response_max - self.response_min + 1

    @property
    def min_answered(self) -> int:
        return math.ceil(len(self.items) / 2)

    def subscale_min_answered(self, subscale: str) -> int:
        return math.ceil(sum(1 for i in self.items if i.subscale == subscale) / 2)


class InstrumentDefinition(BaseModel):
    """A versioned item catalogue. Immutable once a round uses it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=INSTRUMENT_KEY_PATTERN)
    name: LocalizedText
    description: LocalizedText = Field(default_factory=dict)
    scales: list[Scale] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _check(self) -> InstrumentDefinition:
        _check_locales(self.name, "name")
        scale_keys = [s.key for s in self.scales]
        if len(set(scale_keys)) != len(scale_keys):
            raise ValueError("scale keys must be unique")
        if COHERENCE in scale_keys:
            raise ValueError(f"{COHERENCE!r} is reserved for the derived coherence index")
        seen: set[str] = set()
        for scale in self.scales:
            for item in scale.items:
                if item.key in seen:
                    raise ValueError(f"item key {item.key!r} is used twice")
                seen.add(item.key)
                _check_locales(item.text, f"item {item.key!r}")
        return self

    @cached_property
    def items(self) -> list[tuple[Scale, Item]]:
        """Every item with its scale, in a fixed order; the position is the item's index."""
        return [(scale, item) for scale in self.scales for item in scale.items]

    @cached_property
    def item_index(self) -> dict[str, int]:
        return {item.key: i for i, (_, item) in enumerate(self.items)}

    def scale(self, key: str) -> Scale | None:
        return next((s for s in self.scales if s.key == key), None)

    @property
    def has_coherence_index(self) -> bool:
        keys = {s.key for s in self.scales}
        return {RELATIONAL_CAPACITY, RELATIONAL_LEADERSHIP, PSYCHOLOGICAL_SAFETY} <= keys

    def accepted_values(self, item_key: str) -> frozenset[int]:
        scale, item = self.items[self.item_index[item_key]]
        if item.recode is not None:
            return frozenset(item.recode)
        return frozenset(range(scale.response_min, scale.response_max + 1))
