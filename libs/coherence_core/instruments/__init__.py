"""The instrument catalogue: the built-in instruments and the definition model."""

from coherence_core.instruments.catalogue import (
    BUILTIN_KEYS,
    builtin_instrument,
    builtin_instruments,
)
from coherence_core.instruments.model import InstrumentDefinition, Item, Scale, Subscale

__all__ = [
    "BUILTIN_KEYS",
    "InstrumentDefinition",
    "Item",
    "Scale",
    "Subscale",
    "builtin_instrument",
    "builtin_instruments",
]
