"""Property-based checks of SCORING.md §5 on generated organisations.

For any organisation and answers: nothing computed from fewer than k respondents is published,
and in every family of rule 2 — an aggregate made of disjoint parts — the suppressed parts hold
0 or at least k respondents when the aggregate is published, and at least k (or every part is
suppressed) when it is not (no differencing, also across levels). True cell sizes come from the
independent reference implementation, the published flags from the engine; the two must agree.

A second, independent check does the linear algebra: the published rows of one tree (a measure's
members rows, the participation rows with the summary's response rate, an incoming column; the
relational capacity tie cells with the internal and incoming rows and the summary's within mean,
between mean and scale mean), each a sum over its cells, must not determine any non-zero
combination of suppressed cells that together hold fewer than k distinct people. Each published
``outgoing`` and roll-up row of relational capacity whose raters have one tie score each among
the cells it pools is checked the same way, one row at a time against the published ties.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coherence_core.instruments import builtin_instrument
from coherence_scoring.engine import (
    ANSWERS_SCHEMA,
    RESPONDENTS_SCHEMA,
    UNITS_SCHEMA,
    ScoringInput,
    ScoringResult,
    ScoringSettings,
    score,
)
from tests.reference.scoring import Reference
from tests.scoring.engine.builders import RC, RL, Round, same
from tests.scoring.test_engine_matches_reference import result_differences

INSTRUMENT = builtin_instrument("coherence-v1")
SELF_ITEMS = [i for i, (scale, _) in enumerate(INSTRUMENT.items) if scale.targeting == "self"]
TIE_ITEMS = [i for i, (scale, _) in enumerate(INSTRUMENT.items) if scale.targeting == "unit"]


@st.composite
def organisations(draw: st.DrawFn) -> ScoringInput:
    n_units = draw(st.integers(1, 7))
    parents = [None] + [draw(st.none() | st.integers(0, u - 1)) for u in range(1, n_units)]
    units = pl.DataFrame(
        {
            "unit": list(range(n_units)),
            "external_id": [f"u{u}" for u in range(n_units)],
            "parent": parents,
            "headcount": [draw(st.none() | st.integers(0, 40)) for _ in range(n_units)],
        },
        schema=UNITS_SCHEMA,
    )
    n_respondents = draw(st.integers(0, 40))
    homes = [draw(st.integers(0, n_units - 1)) for _ in range(n_respondents)]
    rows: list[tuple[int, int | None, int, int | None]] = []
    for r in range(n_respondents):
        # A respondent-level "tone" makes answers correlated, so scores exist and vary.
        tone = draw(st.integers(1, 5))
        answered = draw(st.sets(st.sampled_from(SELF_ITEMS), max_size=len(SELF_ITEMS)))
        for item in sorted(answered):
            rows.append(
                (r, None, item, draw(st.none() | st.integers(max(1, tone - 1), min(5, tone + 1))))
            )
        targets = draw(st.sets(st.integers(0, n_units - 1), max_size=n_units))
        for target in sorted(targets):
            for item in TIE_ITEMS[: draw(st.integers(3, len(TIE_ITEMS)))]:
                rows.append(
                    (r, target, item, draw(st.integers(max(1, tone - 1), min(5, tone + 1))))
                )
    answers = pl.DataFrame(
        rows or None,
        schema=ANSWERS_SCHEMA,
        orient="row",
    )
    respondents = pl.DataFrame(
        {"respondent": list(range(n_respondents)), "unit": homes}, schema=RESPONDENTS_SCHEMA
    )
    k = draw(st.integers(3, 5))
    return ScoringInput(
        instrument=INSTRUMENT,
        units=units,
        respondents=respondents,
        answers=answers,
        settings=ScoringSettings(min_group_size=k),
    )


def _published(frame: pl.DataFrame, keys: list[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(r[k] for k in keys): r for r in frame.iter_rows(named=True)}


def derivable_small_groups(
    atoms: Mapping[Any, tuple[int | frozenset[Any], bool]], published: Iterable[set[Any]], k: int
) -> list[tuple[Any, ...]]:
    """Sets of suppressed atoms holding 1..k−1 distinct people on which some non-zero
    combination of their sums is determined by the published sums (each published set: the sum
    over its atoms).

    atoms: atom → (people, suppressed), people either a count of people of its own or the set
    of the people in it (atoms may share people: one rater's ties to several units). A published
    atom is known on its own, so only the suppressed atoms of each published set are unknowns.
    T leaks when the span of the published sets meets the span of T's atoms beyond zero:
    rank(M) + |T| > rank([M; I_T]). A superset of a leaking T leaks too, so only the largest
    T for each set P of at most k−1 people is tried: every suppressed atom whose people are in P
    (P ranges over the unions of the atoms' people)."""
    hidden = sorted((a for a, (_, s) in atoms.items() if s), key=str)
    if not hidden:
        return []
    people = {
        a: p if isinstance(p, frozenset) else frozenset((a, i) for i in range(p))
        for a, (p, _) in ((a, atoms[a]) for a in hidden)
    }
    column = {a: i for i, a in enumerate(hidden)}
    m = np.zeros((1, len(hidden)))  # a zero row keeps the shape when nothing is published
    for known in published:
        m = np.vstack([m, [1.0 if a in known else 0.0 for a in hidden]])
    rank_m = np.linalg.matrix_rank(m)
    small = {p for p in people.values() if len(p) <= k - 1}
    unions: set[frozenset[Any]] = set()
    frontier = small
    while frontier:
        unions |= frontier
        frontier = {u | p for u in frontier for p in small if len(u | p) <= k - 1} - unions
    groups = {tuple(a for a in hidden if people[a] <= union) for union in unions}
    leaks = []
    for group in sorted(groups):
        held = len(frozenset().union(*(people[a] for a in group)))
        if not 1 <= held <= k - 1:
            continue
        basis = np.zeros((len(group), len(hidden)))
        for i, a in enumerate(group):
            basis[i, column[a]] = 1.0
        if rank_m + len(group) > np.linalg.matrix_rank(np.vstack([m, basis])):
            leaks.append(group)
    return leaks


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(inputs=organisations())
def test_no_published_number_describes_fewer_than_k(inputs: ScoringInput) -> None:
    k = inputs.settings.min_group_size
    result = score(inputs)
    reference = Reference(inputs)
    problems = result_differences(result, reference.run())
    assert not problems, "engine and reference disagree:\n" + "\n".join(problems)
    unit_n = {key: row.n for key, row in reference.unit_rows.items()}
    tie_n = {key: row.n for key, row in reference.tie_rows.items()}
    part_n = {key: row.n for key, row in reference.participation_rows.items()}

    units = _published(result.unit_scores, ["unit", "scale", "measure", "perspective", "rollup"])
    ties = _published(result.tie_scores, ["from_unit", "to_unit", "scale", "measure"])
    participation = _published(result.participation, ["unit", "rollup"])

    # Rule 1: every published row rests on at least k distinct people.
    for key, row in units.items():
        if not row["suppressed"] and key[1] != "coherence":
            assert unit_n[key] >= k and row["n"] == unit_n[key], key
        if row["suppressed"]:
            assert row["mean"] is None and row["sd"] is None and row["n"] is None, key
    for key, row in ties.items():
        if not row["suppressed"]:
            assert tie_n[key] >= k and row["n"] == tie_n[key], key
        else:
            assert row["mean"] is None and row["n"] is None, key
    for key, row in participation.items():
        if not row["suppressed"]:
            assert part_n[key] >= k, key
        else:
            assert row["respondents"] is None and row["response_rate"] is None, key
    for key, row in units.items():  # coherence: all three inputs published
        if key[1] == "coherence" and not row["suppressed"]:
            unit, _, _, _, rollup = key
            for scale in ("relational_leadership", "psychological_safety"):
                assert not units[(unit, scale, "index", "members", rollup)]["suppressed"]

    def check(aggregate_published: bool, parts: list[tuple[bool, int]], what: object) -> None:
        held = sum(n for suppressed, n in parts if suppressed)
        if aggregate_published:
            assert not 1 <= held <= k - 1, (what, parts)
        else:  # a hidden aggregate cannot be rebuilt from its published parts
            assert held >= k or all(suppressed for suppressed, _ in parts), (what, parts)

    # Rule 2, family 1: an incoming column and its ties.
    for (unit, scale, measure, perspective, rollup), row in units.items():
        if perspective == "incoming" and not rollup:
            parts = [
                (tie["suppressed"], tie_n[key])
                for key, tie in ties.items()
                if key[1] == unit and key[0] != unit and key[2:] == (scale, measure)
            ]
            check(not row["suppressed"], parts, ("incoming", unit, measure))

    # Family 2: a parent's roll-up, its direct members and its children (members rows).
    children: dict[str, list[str]] = defaultdict(list)
    for u in inputs.units.iter_rows(named=True):
        if u["parent"] is not None:
            children[f"u{u['parent']}"].append(u["external_id"])

    def part(unit: str, scale: str, measure: str) -> tuple[bool, int] | None:
        key = (unit, scale, measure, "members", bool(children.get(unit)))
        return (units[key]["suppressed"], unit_n[key]) if key in units else None

    for (unit, scale, measure, perspective, rollup), row in units.items():
        if perspective == "members" and rollup and scale != "coherence":
            below_p = [part(c, scale, measure) for c in children[unit]]
            direct = (unit, scale, measure, "members", False)
            if direct in units:
                below_p.append((units[direct]["suppressed"], unit_n[direct]))
            check(not row["suppressed"], [p for p in below_p if p], ("hierarchy", unit, measure))

    # Family 3: the organisation's published scale mean and its root units.
    roots = [u["external_id"] for u in inputs.units.iter_rows(named=True) if u["parent"] is None]
    for scale in ("relational_leadership", "psychological_safety"):
        org_mean = (result.summary.get("scales") or {}).get(scale, {}).get("mean")
        parts = [p for p in (part(r, scale, "index") for r in roots) if p]
        check(org_mean is not None, parts, ("organisation", scale))

    # Families 2 and 3 for participation rows (n = respondents); the organisation's aggregate is
    # the summary's respondent count, hidden in the rules when it is below k.
    def participation_part(unit: str) -> tuple[bool, int] | None:
        key = (unit, bool(children.get(unit)))
        return (participation[key]["suppressed"], part_n[key]) if key in participation else None

    for (unit, rollup), row in participation.items():
        if rollup:
            below_p = [participation_part(c) for c in children[unit]]
            if (unit, False) in participation:
                below_p.append((participation[(unit, False)]["suppressed"], part_n[(unit, False)]))
            check(not row["suppressed"], [p for p in below_p if p], ("participation", unit))
    parts = [p for p in (participation_part(r) for r in roots) if p]
    check(result.summary["respondents"] >= k, parts, ("participation", "organisation"))

    # The linear algebra: no published sums pin down a combination of fewer than k people.
    subtree: dict[str, set[str]] = {}

    def below(unit: str) -> set[str]:
        if unit not in subtree:
            subtree[unit] = {unit}.union(*(below(c) for c in children[unit]))
        return subtree[unit]

    all_units = [u["external_id"] for u in inputs.units.iter_rows(named=True)]
    for scale in ("relational_leadership", "psychological_safety"):
        for measure in {key[2] for key in units if key[1] == scale}:
            atoms = {
                u: (unit_n[key], units[key]["suppressed"])
                for u in all_units
                if (key := (u, scale, measure, "members", False)) in units
            }
            sums = [
                below(key[0]) if key[4] else {key[0]}
                for key, row in units.items()
                if key[1:4] == (scale, measure, "members") and not row["suppressed"]
            ]
            org = reference.org_rows.get((scale, measure))
            if org is not None and not org.suppressed:
                sums.append(set(all_units))
            leaks = derivable_small_groups(atoms, sums, k)
            assert not leaks, ("members", scale, measure, leaks)
    assert not participation_leaks(inputs, reference, result), "participation"
    columns: dict[tuple[str, str, str], dict[Any, tuple[int, bool]]] = defaultdict(dict)
    for key, tie in ties.items():
        if key[0] != key[1]:
            columns[(key[1], key[2], key[3])][key[0]] = (tie_n[key], tie["suppressed"])
    for (unit, scale, measure), atoms in columns.items():
        incoming = units.get((unit, scale, measure, "incoming", False))
        sums = [{a} for a, (_, suppressed) in atoms.items() if not suppressed]
        if incoming is not None and not incoming["suppressed"]:
            sums.append(set(atoms))
        assert not derivable_small_groups(atoms, sums, k), ("incoming", unit, scale, measure)
    assert not network_leaks(inputs, reference, result), "network"
    assert not pooled_row_leaks(inputs, reference, result), "outgoing and roll-up rows"


def participation_leaks(
    inputs: ScoringInput, reference: Reference, result: ScoringResult
) -> list[tuple[Any, ...]]:
    """The direct participation rows as atoms against every published sum of them: the direct
    and roll-up rows, the organisation total (``respondents``, when at least k) and the
    summary's response rate (times the public headcount total: the respondents of the units
    with a known headcount)."""
    k = inputs.settings.min_group_size
    participation = _published(result.participation, ["unit", "rollup"])
    part_n = {key: row.n for key, row in reference.participation_rows.items()}
    subtree = {
        reference.ext[u]: {reference.ext[x] for x in s} for u, s in reference.subtree.items()
    }
    atoms = {
        u: (part_n[(u, False)], row["suppressed"])
        for (u, rollup), row in participation.items()
        if not rollup
    }
    sums = [
        subtree[u] if rollup else {u}
        for (u, rollup), row in participation.items()
        if not row["suppressed"]
    ]
    if result.summary["respondents"] >= k:
        sums.append(set(subtree))
    if result.summary["response_rate"] is not None:  # headcounts are public
        units = inputs.units.iter_rows(named=True)
        sums.append({u["external_id"] for u in units if u["headcount"] is not None})
    return derivable_small_groups(atoms, sums, k)


def network_leaks(
    inputs: ScoringInput, reference: Reference, result: ScoringResult
) -> list[tuple[Any, ...]]:
    """The relational capacity tie cells R[a, b] (index) as atoms, each holding the set of its
    raters, against every published sum of them: the published ties, the ``internal`` rows
    (R[a, a]), the ``incoming`` rows (the column without the diagonal), the summary's
    within_mean (every R[a, a]), between_mean (every other cell) and the scale mean (all).
    (``outgoing`` and roll-up rows are per-rater means, not sums of cells: ``pooled_row_leaks``.)"""
    k = inputs.settings.min_group_size
    scale = "relational_capacity"
    units = _published(result.unit_scores, ["unit", "scale", "measure", "perspective", "rollup"])
    ties = _published(result.tie_scores, ["from_unit", "to_unit", "scale", "measure"])
    raters: dict[tuple[str, str], set[int]] = defaultdict(set)
    for r, per in reference.tie_scores[(scale, "index")].items():
        for t in per:
            raters[(reference.ext[reference.home[r]], reference.ext[t])].add(r)
    atoms: dict[Any, tuple[int | frozenset[Any], bool]] = {
        cell: (frozenset(people), ties[(*cell, scale, "index")]["suppressed"])
        for cell, people in raters.items()
    }
    sums = [{cell} for cell, (_, suppressed) in atoms.items() if not suppressed]
    for (unit, s, measure, perspective, rollup), row in units.items():
        if (s, measure, rollup) != (scale, "index", False) or row["suppressed"]:
            continue
        if perspective == "internal":
            sums.append({(unit, unit)})
        elif perspective == "incoming":
            sums.append({c for c in atoms if c[1] == unit and c[0] != unit})
    network = result.summary["network"] or {}
    if network.get("within_mean") is not None:
        sums.append({c for c in atoms if c[0] == c[1]})
    if network.get("between_mean") is not None:
        sums.append({c for c in atoms if c[0] != c[1]})
    if result.summary["scales"][scale]["mean"] is not None:
        sums.append(set(atoms))
    return derivable_small_groups(atoms, sums, k)


def pooled_row_leaks(
    inputs: ScoringInput, reference: Reference, result: ScoringResult
) -> list[tuple[Any, ...]]:
    """Each published ``outgoing`` or roll-up row of relational capacity (``index``) against the
    published tie cells (atoms as in ``network_leaks``): the row is the sum of the cells it pools
    (``Reference.pooled_by``) when each of its raters has exactly one tie score among them; such
    a row, with the published ties, must not pin down fewer than k people. One row at a time:
    this is the rule these rows follow (scoring-decisions.md, Anonymity); combinations of
    several such rows, or with other rows and summary values, are not covered by it."""
    k = inputs.settings.min_group_size
    scale = "relational_capacity"
    units = _published(result.unit_scores, ["unit", "scale", "measure", "perspective", "rollup"])
    ties = _published(result.tie_scores, ["from_unit", "to_unit", "scale", "measure"])
    raters: dict[tuple[str, str], set[int]] = defaultdict(set)
    pooled: dict[tuple[str, str, bool], set[tuple[str, str]]] = defaultdict(set)
    ties_in: dict[tuple[str, str, bool], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for r, per in reference.tie_scores[(scale, "index")].items():
        a = reference.home[r]
        for b in per:
            cell = (reference.ext[a], reference.ext[b])
            raters[cell].add(r)
            for u, perspective, rollup in reference.pooled_by(a, b):
                key = (reference.ext[u], perspective, rollup)
                pooled[key].add(cell)
                ties_in[key][r] += 1
    atoms: dict[Any, tuple[int | frozenset[Any], bool]] = {
        cell: (frozenset(people), ties[(*cell, scale, "index")]["suppressed"])
        for cell, people in raters.items()
    }
    published_ties = [{cell} for cell, (_, suppressed) in atoms.items() if not suppressed]
    leaks = []
    for (unit, perspective, rollup), cells in sorted(pooled.items()):
        row = units[(unit, scale, "index", perspective, rollup)]
        if not row["suppressed"] and set(ties_in[(unit, perspective, rollup)].values()) == {1}:
            leaks += derivable_small_groups(atoms, [*published_ties, cells], k)
    return leaks


def _round(
    units: list[tuple[str, int | None]],
    people: list[tuple[str, int, dict[str, int]]],
    k: int = 3,
) -> ScoringInput:
    """Root units (external id, headcount); groups of people (home, count, {target: value}),
    each answering every relational capacity item about each target with one value."""
    rnd = Round()
    for unit, headcount in units:
        rnd.unit(unit, headcount=headcount)
    for home, count, about in people:
        rnd.people_in(home, count, same(RL, 4), {t: same(RC, v) for t, v in about.items()})
    return rnd.inputs(k=k)


#: The leaks that summary values opened before they were treated as aggregates (k = 3), with
#: the summary value that gave each away.
SUMMARY_LEAKS = {
    # within_mean × 12 − A − B = C's two internal ties
    "within_mean": (
        _round(
            [("A", None), ("B", None), ("C", None)],
            [("A", 5, {"A": 4}), ("B", 5, {"B": 3}), ("C", 2, {"C": 1})],
        ),
        ("network", "within_mean"),
    ),
    # between_mean × 14 − incoming A − incoming B = Y's two people's ties to C and D
    "between_mean": (
        _round(
            [("A", None), ("B", None), ("C", None), ("D", None), ("X", None), ("Y", None)],
            [("X", 5, {"A": 4, "B": 3}), ("Y", 2, {"C": 1, "D": 2})],
        ),
        ("network", "between_mean"),
    ),
    # the scale mean × 12 − A − B = C's ties
    "scale mean": (
        _round(
            [("A", None), ("B", None), ("C", None)],
            [("A", 5, {"A": 4}), ("B", 5, {"B": 3}), ("C", 2, {"C": 1})],
        ),
        ("scales", "relational_capacity", "mean"),
    ),
    # the scale mean × 5 − between_mean × 3 = A's two internal ties
    "scale mean with between_mean": (
        _round(
            [("A", None), ("B", None)],
            [("A", 2, {"A": 4, "B": 2}), ("B", 1, {"A": 3})],
        ),
        ("scales", "relational_capacity", "mean"),
    ),
    # response_rate × 15 − B = A's 2 respondents
    "response_rate": (
        _round([("A", 5), ("B", 10), ("C", None)], [("A", 2, {}), ("B", 5, {}), ("C", 4, {})]),
        ("response_rate",),
    ),
    # response_rate × 10 = A (hidden by rule 2), and respondents − A − C = B's 2
    "response_rate with respondents": (
        _round([("A", 10), ("B", None), ("C", None)], [("A", 5, {}), ("B", 2, {}), ("C", 5, {})]),
        ("response_rate",),
    ),
}


def _tree_round(
    units: list[tuple[str, str | None]], people: list[tuple[str, int, dict[str, int]]]
) -> ScoringInput:
    """Units (external id, parent); groups of people as in ``_round``; k = 3."""
    rnd = Round()
    for unit, parent in units:
        rnd.unit(unit, parent)
    for home, count, about in people:
        rnd.people_in(home, count, about={t: same(RC, v) for t, v in about.items()})
    return rnd.inputs(k=3)


#: The leaks of rows that pool tie scores before they were checked against their ties (k = 3),
#: with the row that gave each away (unit, perspective, rollup).
POOLED_ROW_LEAKS = {
    # P's roll-up internal × 12 − R[P,P] × 5 − R[a,a] × 5 = b's two people
    "rollup internal": (
        _tree_round(
            [("P", None), ("a", "P"), ("b", "P")],
            [("P", 5, {"P": 4}), ("a", 5, {"a": 3}), ("b", 2, {"b": 1})],
        ),
        ("P", "internal", True),
    ),
    # outgoing(a) × 5 − R[a,b] × 3 = R[a,c] (2 raters); incoming(c) − R[a,c] = d's one person
    "outgoing": (
        _tree_round(
            [("a", None), ("b", None), ("c", None), ("d", None)],
            [("a", 3, {"b": 4}), ("a", 2, {"c": 1}), ("d", 1, {"c": 5})],
        ),
        ("a", "outgoing", False),
    ),
}


@pytest.mark.parametrize("case", list(POOLED_ROW_LEAKS))
def test_the_linear_check_covers_outgoing_and_rollup_rows(case: str) -> None:
    """As scored, the row is hidden and nothing leaks; published, the check finds the leak."""
    inputs, (unit, perspective, rollup) = POOLED_ROW_LEAKS[case]
    result = score(inputs)
    reference = Reference(inputs)
    assert not result_differences(result, reference.run())
    assert not pooled_row_leaks(inputs, reference, result)
    assert not network_leaks(inputs, reference, result)

    is_row = (
        (pl.col("unit") == unit)
        & (pl.col("scale") == "relational_capacity")
        & (pl.col("perspective") == perspective)
        & (pl.col("rollup") == rollup)
    )
    assert result.unit_scores.filter(is_row & (pl.col("measure") == "index"))["suppressed"].all()
    leaked = dataclasses.replace(
        result,
        unit_scores=result.unit_scores.with_columns(
            suppressed=pl.when(is_row).then(False).otherwise(pl.col("suppressed"))
        ),
    )
    assert pooled_row_leaks(inputs, reference, leaked)


@pytest.mark.parametrize("case", list(SUMMARY_LEAKS))
def test_the_linear_check_covers_the_summary_values(case: str) -> None:
    """As scored, nothing leaks; with the summary value published, the check finds the leak."""
    inputs, path = SUMMARY_LEAKS[case]
    result = score(inputs)
    reference = Reference(inputs)
    assert not result_differences(result, reference.run())
    assert not network_leaks(inputs, reference, result)
    assert not participation_leaks(inputs, reference, result)

    summary = copy.deepcopy(result.summary)
    place = summary
    for key in path[:-1]:
        place = place[key]
    assert place[path[-1]] is None
    place[path[-1]] = 1.0  # only whether a value is published matters to the check
    leaked = dataclasses.replace(result, summary=summary)
    assert network_leaks(inputs, reference, leaked) or participation_leaks(
        inputs, reference, leaked
    )
