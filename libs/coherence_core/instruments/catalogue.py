"""Built-in instruments, loaded once from the data files shipped with the package."""

from __future__ import annotations

from functools import cache
from importlib import resources

from coherence_core.instruments.model import InstrumentDefinition

BUILTIN_KEYS = ("coherence-v1",)


@cache
def builtin_instrument(key: str) -> InstrumentDefinition:
    if key not in BUILTIN_KEYS:
        raise KeyError(key)
    text = resources.files("coherence_core.instruments").joinpath(f"data/{key}.json").read_text()
    return InstrumentDefinition.model_validate_json(text)


def builtin_instruments() -> list[InstrumentDefinition]:
    return [builtin_instrument(key) for key in BUILTIN_KEYS]
