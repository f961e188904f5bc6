"""Small numpy helpers shared by the anonymity rules."""

from __future__ import annotations

import numpy as np
import polars as pl


def lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """values[keys == q] for each q of query (keys unique), -1 where absent."""
    if len(keys) == 0:
        return np.full(len(query), -1, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    pos = np.clip(np.searchsorted(keys[order], query), 0, len(keys) - 1)
    found = keys[order][pos] == query
    return np.where(found, values[order][pos], -1).astype(np.int64)


def ints(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy().astype(np.int64)
