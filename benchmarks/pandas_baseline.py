"""A straightforward pandas implementation of SCORING.md's unit and tie measures (the baseline
the engine is compared with), written the way an analyst would: merges, groupbys, aggregations.

It computes, for every scale and measure (`index`, each subscale, each item), scoring method 2:
  * counted responses: recode, reversal, and only the responses of a respondent who answered at
    least ceil(items / 2) of the scale's items about that referent (one eligibility per scale and
    referent decides every measure);
  * unit rows (`rollup: false`): `members` for scales asked once; `internal`, `incoming`,
    `outgoing` for scales asked about units;
  * ties R[a, b] (raters: direct members of `a`);
  * roll-ups (`rollup: true`) for units with child units: the subtree as one unit;
  * n (distinct people), the pooled mean (all counted responses of the row), and sd (ddof 1) and
    the 95% t-interval of the people's own means in the row.
No anonymity, no rwg, no coherence index, no summary: the engine does all of those as well, so
this baseline does less work than the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from scipy import stats

from coherence_core.instruments import InstrumentDefinition


@dataclass(frozen=True)
class PandasInput:
    instrument: InstrumentDefinition
    units: pd.DataFrame  # unit, external_id, parent, headcount
    respondents: pd.DataFrame  # respondent, unit
    answers: pd.DataFrame  # respondent, target, item, value


def from_polars(
    instrument: InstrumentDefinition, units: Any, respondents: Any, answers: Any
) -> Any:
    """The engine's input frames as pandas frames (not part of the timed work)."""
    return PandasInput(
        instrument=instrument,
        units=units.to_pandas(),
        respondents=respondents.to_pandas(),
        answers=answers.to_pandas(),
    )


def item_table(instrument: InstrumentDefinition) -> pd.DataFrame:
    """One row per item: its index, scale, subscale, targeting, range, reversal, recode."""
    rows = []
    for i, (scale, item) in enumerate(instrument.items):
        rows.append(
            {
                "item": i,
                "item_key": item.key,
                "scale": scale.key,
                "subscale": item.subscale,
                "targeting": scale.targeting,
                "low": scale.response_min,
                "high": scale.response_max,
                "reversed": item.reversed,
                "recode": item.recode,
            }
        )
    return pd.DataFrame(rows)


def minimum_answers(instrument: InstrumentDefinition) -> tuple[dict[str, int], dict[Any, int]]:
    """ceil(items / 2) per scale and per (scale, subscale)."""
    scales = {s.key: math.ceil(len(s.items) / 2) for s in instrument.scales}
    subscales = {}
    for s in instrument.scales:
        for sub in s.subscales:
            count = sum(1 for item in s.items if item.subscale == sub.key)
            subscales[(s.key, sub.key)] = math.ceil(count / 2)
    return scales, subscales


def counted_responses(data: PandasInput) -> pd.DataFrame:
    """respondent, unit (home), target (-1 for scales asked once), scale, measure, value."""
    items = item_table(data.instrument)
    answers = data.answers.dropna(subset=["value"])
    answers = answers.merge(data.respondents, on="respondent")
    answers = answers.merge(items, on="item")

    # recode (when the item has a map), then reversal: (min + max) - value
    def recoded(row: pd.Series) -> float:
        return row["recode"].get(int(row["value"]), np.nan)

    value = answers["value"].astype(float)
    has_recode = answers["recode"].notna()
    if has_recode.any():
        value[has_recode] = answers[has_recode].apply(recoded, axis=1)
    value = value.where(~answers["reversed"], answers["low"] + answers["high"] - value)
    answers = answers.assign(value=value).dropna(subset=["value"])
    answers = answers[(answers["value"] >= answers["low"]) & (answers["value"] <= answers["high"])]
    answers["target"] = answers["target"].where(answers["targeting"] == "unit", -1)
    answers = answers[answers["target"].notna()]
    answers["target"] = answers["target"].astype(int)

    keys = ["respondent", "unit", "target", "scale"]
    scale_min, _ = minimum_answers(data.instrument)
    count = answers.groupby(keys)["value"].transform("count")
    answers = answers[count >= answers["scale"].map(scale_min)]
    # every counted response in its item, its subscale and its scale's index
    columns = [*keys, "measure", "value"]
    item = answers.assign(measure=answers["item_key"])[columns]
    with_sub = answers.dropna(subset=["subscale"])
    sub = with_sub.assign(measure=with_sub["subscale"])[columns]
    index = answers.assign(measure="index")[columns]
    return pd.concat([index, sub, item], ignore_index=True)


def describe(values: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per row: n people, the pooled mean of their responses, and sd (ddof 1) and the 95%
    t-interval of the people's own means (sd and interval null for n < 2)."""
    person = values.groupby([*keys, "respondent"])["value"].agg(["sum", "count"]).reset_index()
    person["own"] = person["sum"] / person["count"]
    out = (
        person.groupby(keys)
        .agg(
            n=("own", "count"), total=("sum", "sum"), responses=("count", "sum"), sd=("own", "std")
        )
        .reset_index()
    )
    out["mean"] = out["total"] / out["responses"]
    t = stats.t.ppf(0.975, out["n"] - 1)
    half = t * out["sd"] / np.sqrt(out["n"])
    out["ci_low"] = out["mean"] - half
    out["ci_high"] = out["mean"] + half
    return out.drop(columns=["total", "responses"])


def ancestors(units: pd.DataFrame) -> pd.DataFrame:
    """unit, p: every unit with each of its ancestors-or-self p that has child units."""
    parent = dict(zip(units["unit"], units["parent"], strict=True))
    has_children = {int(p) for p in units["parent"].dropna()}
    rows = []
    for unit in units["unit"]:
        p: Any = unit
        while p is not None and not pd.isna(p):
            if int(p) in has_children:
                rows.append({"unit": int(unit), "p": int(p)})
            p = parent.get(int(p))
    return pd.DataFrame(rows, columns=["unit", "p"])


def per_rater(values: pd.DataFrame, unit: str) -> pd.DataFrame:
    """The responses of each rater in each cell of the given unit column (``describe`` pools
    them per person)."""
    return values[[unit, "scale", "measure", "respondent", "value"]].rename(columns={unit: "unit"})


def score_pandas(data: PandasInput) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(unit rows, tie rows) with external ids, like the engine's frames before anonymity."""
    scores = counted_responses(data)
    selves = scores[scores["target"] == -1]
    ties = scores[scores["target"] != -1]
    internal = ties[ties["target"] == ties["unit"]]
    external = ties[ties["target"] != ties["unit"]]
    cell = ["unit", "scale", "measure"]

    parts = [
        describe(selves, cell).assign(perspective="members", rollup=False),
        describe(internal, cell).assign(perspective="internal", rollup=False),
        describe(external.drop(columns="unit").rename(columns={"target": "unit"}), cell).assign(
            perspective="incoming", rollup=False
        ),
        describe(per_rater(external, "unit"), cell).assign(perspective="outgoing", rollup=False),
    ]

    tree = ancestors(data.units)
    members = selves.merge(tree, on="unit")
    parts.append(describe(members.assign(unit=members["p"]), cell))
    parts[-1] = parts[-1].assign(perspective="members", rollup=True)
    # rater's subtrees: ties about a unit of the same subtree are internal, the rest outgoing
    rater_side = ties.merge(tree, on="unit")
    rater_side = rater_side.merge(
        tree.rename(columns={"unit": "target"}), on=["target", "p"], how="left", indicator=True
    )
    inside = rater_side[rater_side["_merge"] == "both"]
    outside = rater_side[rater_side["_merge"] == "left_only"]
    parts.append(describe(per_rater(inside, "p"), cell).assign(perspective="internal", rollup=True))
    parts.append(
        describe(per_rater(outside, "p"), cell).assign(perspective="outgoing", rollup=True)
    )
    # target's subtrees, rated from outside them
    target_side = ties.merge(tree.rename(columns={"unit": "target"}), on="target")
    target_side = target_side.merge(tree, on=["unit", "p"], how="left", indicator=True)
    incoming = target_side[target_side["_merge"] == "left_only"]
    parts.append(
        describe(per_rater(incoming, "p"), cell).assign(perspective="incoming", rollup=True)
    )

    unit_rows = pd.concat(parts, ignore_index=True)
    tie_rows = describe(
        ties.rename(columns={"unit": "from", "target": "to"}), ["from", "to", *cell[1:]]
    )

    names = dict(zip(data.units["unit"], data.units["external_id"], strict=True))
    unit_rows["unit"] = unit_rows["unit"].map(names)
    tie_rows["from_unit"] = tie_rows.pop("from").map(names)
    tie_rows["to_unit"] = tie_rows.pop("to").map(names)
    return unit_rows, tie_rows


# ------------------------------------------------------------------------- agreement with engine


@dataclass(frozen=True)
class Agreement:
    unit_rows: int  # engine rows compared (published, with a mean)
    tie_rows: int
    max_abs_diff: float


def _compare(engine: pl.DataFrame, ours: pd.DataFrame, keys: list[str], what: str) -> int:
    published = engine.filter(~pl.col("suppressed") & pl.col("mean").is_not_null())
    theirs = published.select(*keys, "n", "mean", "sd").to_pandas()
    merged = theirs.merge(ours, on=keys, how="left", suffixes=("", "_pd"), indicator=True)
    missing = merged[merged["_merge"] != "both"]
    if len(missing):
        raise AssertionError(f"{what}: {len(missing)} engine rows have no pandas row:\n{missing}")
    if not (merged["n"] == merged["n_pd"]).all():
        bad = merged[merged["n"] != merged["n_pd"]]
        raise AssertionError(f"{what}: n differs on {len(bad)} rows:\n{bad.head()}")
    for column in ("mean", "sd"):
        a, b = merged[column].to_numpy(float), merged[f"{column}_pd"].to_numpy(float)
        same = np.isclose(a, b, rtol=1e-9, atol=1e-9) | (np.isnan(a) & np.isnan(b))
        if column == "sd":  # the engine publishes sd only where no hidden cell is pooled
            same |= np.isnan(a)
        if not same.all():
            raise AssertionError(f"{what}: {column} differs:\n{merged[~same].head()}")
    return len(merged)


def check_agreement(result: Any, unit_rows: pd.DataFrame, tie_rows: pd.DataFrame) -> Agreement:
    """Every published engine row (unit and tie, every measure and perspective, roll-ups, but
    not the coherence index, which the baseline does not compute) against pandas: same n, same
    mean, and the same sd where the engine publishes one, within 1e-9. Raises AssertionError on
    any difference."""
    engine_units = result.unit_scores.filter(pl.col("scale") != "coherence")
    units = _compare(
        engine_units, unit_rows, ["unit", "scale", "measure", "perspective", "rollup"], "units"
    )
    ties = _compare(
        result.tie_scores, tie_rows, ["from_unit", "to_unit", "scale", "measure"], "ties"
    )
    # every cell with a respondent has a row on both sides (published or suppressed)
    if engine_units.height != len(unit_rows) or result.tie_scores.height != len(tie_rows):
        raise AssertionError(
            f"row counts differ: engine {engine_units.height} unit / "
            f"{result.tie_scores.height} tie rows, pandas {len(unit_rows)} / {len(tie_rows)}"
        )
    diffs = []
    for engine, ours, keys in (
        (engine_units, unit_rows, ["unit", "scale", "measure", "perspective", "rollup"]),
        (result.tie_scores, tie_rows, ["from_unit", "to_unit", "scale", "measure"]),
    ):
        joined = (
            engine.filter(pl.col("mean").is_not_null())
            .select(*keys, "mean")
            .to_pandas()
            .merge(ours[[*keys, "mean"]], on=keys, suffixes=("", "_pd"))
        )
        diffs.append(float((joined["mean"] - joined["mean_pd"]).abs().max()))
    return Agreement(unit_rows=units, tie_rows=ties, max_abs_diff=max(diffs))
