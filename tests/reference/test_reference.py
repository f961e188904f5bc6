"""The reference implementation itself (scoring method 2), on rounds small enough to check by hand.

Every round uses the built-in instrument ``coherence-v1`` (relational capacity 9 items, 5 needed;
relational leadership 9 items in three subscales of 3, 5 needed; psychological safety 7 items,
4 needed, items 1, 3 and 5 reversed) and k = 3. Expected numbers are written out as fractions
computed by hand from the answers; the comments show the arithmetic.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from fractions import Fraction

import polars as pl
import pytest
from scipy import stats

from coherence_core.instruments import builtin_instrument
from coherence_scoring.engine.types import ScoringInput, ScoringSettings
from tests.reference import reference_changes, reference_row_members, reference_score

INSTRUMENT = builtin_instrument("coherence-v1")
ITEM = INSTRUMENT.item_index
RC_ITEMS = [i.key for i in INSTRUMENT.scale("relational_capacity").items]
RL_ITEMS = [i.key for i in INSTRUMENT.scale("relational_leadership").items]
PS_ITEMS = [i.key for i in INSTRUMENT.scale("psychological_safety").items]
ENGAGING = RL_ITEMS[3:6]

Answer = tuple[int, str | None, str, int | None]  # (person, target external id, item, raw value)


# ---- builders ---------------------------------------------------------------------------------


def build_input(
    units: Sequence[tuple[str, str | None, int | None]],
    people: dict[int, str],
    answers: list[Answer],
    k: int = 3,
) -> ScoringInput:
    """units: (external id, parent external id, headcount); people: person → home unit."""
    index = {ext: i for i, (ext, _, _) in enumerate(units)}
    unit_frame = pl.DataFrame(
        {
            "unit": list(range(len(units))),
            "external_id": [ext for ext, _, _ in units],
            "parent": [None if p is None else index[p] for _, p, _ in units],
            "headcount": [h for _, _, h in units],
        },
        schema={
            "unit": pl.Int32,
            "external_id": pl.String,
            "parent": pl.Int32,
            "headcount": pl.Int32,
        },
    )
    respondents = pl.DataFrame(
        {"respondent": list(people), "unit": [index[u] for u in people.values()]},
        schema={"respondent": pl.Int64, "unit": pl.Int32},
    )
    answer_frame = pl.DataFrame(
        [(p, None if t is None else index[t], ITEM[item], v) for p, t, item, v in answers],
        schema={"respondent": pl.Int64, "target": pl.Int32, "item": pl.Int16, "value": pl.Int16},
        orient="row",
    )
    return ScoringInput(INSTRUMENT, unit_frame, respondents, answer_frame, ScoringSettings(k))


def self_answers(person: int, items: list[str], values: list[int | None]) -> list[Answer]:
    return [(person, None, item, v) for item, v in zip(items, values, strict=True)]


def rate(person: int, target: str, n_items: int, value: int) -> list[Answer]:
    """``person`` answers the first ``n_items`` relational capacity items about ``target``."""
    return [(person, target, item, value) for item in RC_ITEMS[:n_items]]


def unit_row(result, unit, scale, perspective, rollup=False, measure="index"):  # type: ignore[no-untyped-def]
    rows = result.unit_scores.filter(
        pl.col("unit") == unit,
        pl.col("scale") == scale,
        pl.col("measure") == measure,
        pl.col("perspective") == perspective,
        pl.col("rollup") == rollup,
    ).to_dicts()
    assert len(rows) <= 1
    return rows[0] if rows else None


def tie_row(result, a, b, measure="index", scale="relational_capacity"):  # type: ignore[no-untyped-def]
    rows = result.tie_scores.filter(
        pl.col("from_unit") == a,
        pl.col("to_unit") == b,
        pl.col("scale") == scale,
        pl.col("measure") == measure,
    ).to_dicts()
    assert len(rows) <= 1
    return rows[0] if rows else None


def assert_row(row, mean: Fraction, n: int, person_values: list[Fraction]) -> None:  # type: ignore[no-untyped-def]
    """Published, pooled mean ``mean``, ``n`` people, sd and interval from the person values
    with the interval centred on the pooled mean."""
    assert row is not None
    assert not row["suppressed"] and row["suppression_reason"] is None
    assert row["n"] == n == len(person_values)
    assert row["mean"] == float(mean)
    sd = statistics.stdev(float(v) for v in person_values)
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    assert row["sd"] == pytest.approx(sd, abs=1e-12)
    assert row["ci_low"] == pytest.approx(float(mean) - half, abs=1e-12)
    assert row["ci_high"] == pytest.approx(float(mean) + half, abs=1e-12)


def assert_suppressed(row) -> None:  # type: ignore[no-untyped-def]
    assert row is not None
    assert row["suppressed"] and row["suppression_reason"] == "min_group_size"
    for key in ("n", "mean", "sd", "ci_low", "ci_high", "band"):
        assert row[key] is None, key
    for key in ("rwg", "low_agreement"):
        assert row.get(key) is None, key


# ---- round 1: psychological safety in one unit ---------------------------------------------
#
# Items: 1 mistakes_held_against (R), 2 raise_problems, 3 reject_different (R), 4 safe_risk,
# 5 hard_to_ask_help (R), 6 no_undermining, 7 skills_valued. Scored values (R: 6 − raw):
#   p1 all 7, raw 2 4 1 5 2 4 4 → 4 4 5 5 4 4 4   sum 30 / 7
#   p2 all 7, raw 1 5 2 4 1 5 5 → 5 5 4 4 5 5 5   sum 33 / 7
#   p3 items 1-4, raw 3 3 3 3  → 3 3 3 3         sum 12 / 4 (eligible: 4 of 7)
#   p4 items 1, 2, 4 raw 5 1 1 → 1 1 1           (3 of 7: not eligible, counts nowhere)
#   p5 items 4-7, raw 1 1 1 1  → 1 5 1 1         sum 8 / 4
#   p6 items 1-3 and "don't know" on 4-7         (3 answered: not eligible)

PS_ROUND: dict[int, list[int | None]] = {
    1: [2, 4, 1, 5, 2, 4, 4],
    2: [1, 5, 2, 4, 1, 5, 5],
    3: [3, 3, 3, 3, None, None, None],
    4: [5, 1, None, 1, None, None, None],
    5: [None, None, None, 1, 1, 1, 1],
    6: [5, 5, 5, None, None, None, None],
}


def ps_round() -> ScoringInput:
    answers: list[Answer] = []
    for person, values in PS_ROUND.items():
        answers += [
            (person, None, item, v)
            for item, v in zip(PS_ITEMS, values, strict=True)
            if v is not None or person == 6
        ]
    return build_input([("u", None, 10)], dict.fromkeys(PS_ROUND, "u"), answers)


@pytest.fixture(scope="module")
def ps_result():  # type: ignore[no-untyped-def]
    return reference_score(ps_round())


def test_index_mean_is_pooled_and_eligibility_decides_every_row(ps_result) -> None:  # type: ignore[no-untyped-def]
    row = unit_row(ps_result, "u", "psychological_safety", "members")
    # pooled: (30 + 33 + 12 + 8) / (7 + 7 + 4 + 4) = 83/22; the mean of respondent scores
    # (30/7 + 33/7 + 3 + 2) / 4 = 3.5 would differ
    person_values = [Fraction(30, 7), Fraction(33, 7), Fraction(3), Fraction(2)]
    assert_row(row, Fraction(83, 22), 4, person_values)
    assert row["mean"] != statistics.mean(float(v) for v in person_values)
    assert row["band"] == "moderate"  # 3.5 ≤ 3.77 ≤ 4.0
    # item rows pool only the eligible respondents: p4's 5→1, 1, 1 count nowhere
    expected = {
        "ps_mistakes_held_against": (Fraction(4), 3),  # 4, 5, 3 (not p4's 1)
        "ps_raise_problems": (Fraction(4), 3),  # 4, 5, 3 (not p4's 1)
        "ps_reject_different": (Fraction(4), 3),  # 5, 4, 3
        "ps_safe_risk": (Fraction(13, 4), 4),  # 5, 4, 3, 1 (not p4's 1)
        "ps_hard_to_ask_help": (Fraction(14, 3), 3),  # 4, 5, 5
        "ps_no_undermining": (Fraction(10, 3), 3),  # 4, 5, 1
        "ps_skills_valued": (Fraction(10, 3), 3),  # 4, 5, 1
    }
    for item, (mean, n) in expected.items():
        item_row = unit_row(ps_result, "u", "psychological_safety", "members", measure=item)
        assert item_row["n"] == n, item
        assert item_row["mean"] == float(mean), item
        assert item_row["band"] is None  # bands only on index rows
    # no subscales: index and the 7 items
    measures = ps_result.unit_scores.filter(pl.col("scale") == "psychological_safety")["measure"]
    assert sorted(measures) == sorted(["index", *PS_ITEMS])
    # the organisation mean pools the same 22 responses; 6 respondents in the round
    assert ps_result.summary["scales"]["psychological_safety"]["mean"] == float(Fraction(83, 22))
    assert ps_result.summary["respondents"] == 6
    assert ps_result.summary["response_rate"] == pytest.approx(6 / 10)
    part = ps_result.participation.to_dicts()
    assert [(r["unit"], r["rollup"], r["respondents"], r["headcount"]) for r in part] == [
        ("u", False, 6, 10)
    ]
    assert part[0]["response_rate"] == pytest.approx(0.6)


def test_sd_and_interval_use_person_values_around_the_pooled_mean(ps_result) -> None:  # type: ignore[no-untyped-def]
    row = unit_row(ps_result, "u", "psychological_safety", "members")
    values = [30 / 7, 33 / 7, 3.0, 2.0]
    sd = statistics.stdev(values)
    assert row["sd"] == pytest.approx(sd, abs=1e-12)
    centre = (row["ci_low"] + row["ci_high"]) / 2
    assert centre == pytest.approx(83 / 22, abs=1e-12)
    assert centre != pytest.approx(statistics.mean(values), abs=1e-6)
    half = (row["ci_high"] - row["ci_low"]) / 2
    assert half == pytest.approx(stats.t.ppf(0.975, 3) * sd / 2, abs=1e-12)


def test_rwg_on_members_rows_uses_the_counted_responses_per_item(ps_result) -> None:  # type: ignore[no-untyped-def]
    # item variances: 1, 1, 1, 35/12 (5 4 3 1), 1/3 (4 5 5), 13/3 (4 5 1), 13/3; mean 179/84 ≥ 2
    row = unit_row(ps_result, "u", "psychological_safety", "members")
    assert row["rwg"] == 0.0 and row["low_agreement"] is True
    hard = unit_row(
        ps_result, "u", "psychological_safety", "members", measure="ps_hard_to_ask_help"
    )
    assert hard["rwg"] == pytest.approx(1 - Fraction(1, 3) / 2)  # 5/6
    assert hard["low_agreement"] is False
    risk = unit_row(ps_result, "u", "psychological_safety", "members", measure="ps_safe_risk")
    assert risk["rwg"] == 0.0  # 1 − (35/12)/2 < 0, truncated


# ---- round 2: relational leadership subscales ----------------------------------------------
#
#   q1 framing 4 4 4, engaging 3 3 3, involving 5 5 5       (9 answered)
#   q2 framing 5 5 5, engaging 2 - -, involving 4 - -       (5: eligible; 1 engaging answer)
#   q3 framing 2 2 -, engaging 2 2 -                        (4: not eligible anywhere)
#   q4 framing 3 3 3, engaging 4 4 -                        (5: eligible; no involving answer)
#   q5 framing 5 4 3, engaging 4 4 4, involving 3 3 3       (9)

RL_ROUND: dict[int, list[int | None]] = {
    1: [4, 4, 4, 3, 3, 3, 5, 5, 5],
    2: [5, 5, 5, 2, None, None, 4, None, None],
    3: [2, 2, None, 2, 2, None, None, None, None],
    4: [3, 3, 3, 4, 4, None, None, None, None],
    5: [5, 4, 3, 4, 4, 4, 3, 3, 3],
}


def rl_round(rl: dict[int, list[int | None]] = RL_ROUND) -> ScoringInput:
    answers: list[Answer] = []
    for person, values in rl.items():
        answers += [a for a in self_answers(person, RL_ITEMS, values) if a[3] is not None]
    return build_input([("v", None, None)], dict.fromkeys(rl, "v"), answers)


@pytest.fixture(scope="module")
def rl_result():  # type: ignore[no-untyped-def]
    return reference_score(rl_round())


def test_subscale_rows_have_no_minimum_of_their_own(rl_result) -> None:  # type: ignore[no-untyped-def]
    def row(measure):  # type: ignore[no-untyped-def]
        return unit_row(rl_result, "v", "relational_leadership", "members", measure=measure)

    # index: (36 + 21 + 17 + 33) / (9 + 5 + 5 + 9) = 107/28, q3 left out
    assert_row(
        row("index"),
        Fraction(107, 28),
        4,
        [Fraction(4), Fraction(21, 5), Fraction(17, 5), Fraction(11, 3)],
    )
    # framing: (12 + 15 + 9 + 12) / 12 = 4, q3's two framing answers do not count
    assert_row(row("framing"), Fraction(4), 4, [Fraction(4), Fraction(5), Fraction(3), Fraction(4)])
    # engaging: q2's single answer counts (no subscale minimum): (9 + 2 + 8 + 12) / 9 = 31/9
    assert_row(
        row("engaging"), Fraction(31, 9), 4, [Fraction(3), Fraction(2), Fraction(4), Fraction(4)]
    )
    # involving: q4 answered none: (15 + 4 + 9) / 7 = 4, n = 3
    assert_row(row("involving"), Fraction(4), 3, [Fraction(5), Fraction(4), Fraction(3)])
    # rl_engage_recognise: q1 and q5 only → 2 people, suppressed (rule 1)
    assert_suppressed(row("rl_engage_recognise"))
    assert row("index")["band"] == "moderate"  # 107/28 ≈ 3.82
    assert row("framing")["band"] is None


def test_rwg_j_on_index_and_subscale_rows(rl_result) -> None:  # type: ignore[no-untyped-def]
    def row(measure):  # type: ignore[no-untyped-def]
        return unit_row(rl_result, "v", "relational_leadership", "members", measure=measure)

    # item variances (counted responses): f1 4 5 3 5 → 11/12, f2 4 5 3 4 → 2/3, f3 → 11/12,
    # e1 3 2 4 4 → 11/12, e2 3 4 4 → 1/3, e3 3 4 → 1/2, i1 5 4 3 → 1, i2 5 3 → 2, i3 → 2
    # index: s̄² = 111/108 = 37/36, x = 37/72: 9(1 − x) / (9(1 − x) + x) = 315/352
    assert row("index")["rwg"] == pytest.approx(315 / 352, abs=1e-12)
    assert row("index")["low_agreement"] is False
    # framing: s̄² = 5/6, x = 5/12: 3·7/12 / (3·7/12 + 5/12) = 21/26
    assert row("framing")["rwg"] == pytest.approx(21 / 26, abs=1e-12)
    # involving: s̄² = 5/3, x = 5/6: 3·1/6 / (3/6 + 5/6) = 3/8
    assert row("involving")["rwg"] == pytest.approx(3 / 8, abs=1e-12)
    assert row("involving")["low_agreement"] is True
    # single items: 1 − s²/2
    assert row("rl_frame_expectations")["rwg"] == pytest.approx(2 / 3, abs=1e-12)
    assert row("rl_frame_expectations")["low_agreement"] is True
    assert row("rl_involve_input")["n"] is None  # 2 people: suppressed, no rwg
    assert row("rl_engage_conflicts")["rwg"] == pytest.approx(1 - (11 / 12) / 2, abs=1e-12)


def test_summary_on_a_self_scale(rl_result) -> None:  # type: ignore[no-untyped-def]
    s = rl_result.summary
    assert s["respondents"] == 5
    assert s["response_rate"] is None  # no headcount known
    rl = s["scales"]["relational_leadership"]
    assert rl["mean"] == float(Fraction(107, 28))
    # complete cases: q1 and q5 only (2 people < k): no α
    assert rl["alpha"] is None
    # one unit: no ICC
    assert rl["icc1"] is None and rl["icc2"] is None
    assert s["scales"]["relational_capacity"]["mean"] is None
    assert s["network"]["within_mean"] is None and s["network"]["holes"] == 0
    assert s["leadership_collaboration"] is None


# ---- round 3: outgoing rows, rule 1, holes -----------------------------------------------
#
# Roots a, b, c, d; a has a1, a2, a3; b has b1 (who answers nothing scorable).
#   a1 → b 9×4 (36/9), a1 → c 5×2 (10/5)
#   a2 → b 5×5 (25/5)
#   a3 → c 9×3 (27/9), a3 → b 4×1 (4 of 9: not eligible), a3 → d 4×5 (not eligible)


def out_round() -> ScoringInput:
    answers = [
        *rate(1, "b", 9, 4),
        *rate(1, "c", 5, 2),
        *rate(2, "b", 5, 5),
        *rate(3, "c", 9, 3),
        *rate(3, "b", 4, 1),
        *rate(3, "d", 4, 5),
        (4, None, "rl_frame_direction", None),
    ]
    units = [("a", None, 4), ("b", None, 2), ("c", None, None), ("d", None, None)]
    return build_input(units, {1: "a", 2: "a", 3: "a", 4: "b"}, answers)


@pytest.fixture(scope="module")
def out_result():  # type: ignore[no-untyped-def]
    return reference_score(out_round())


def test_outgoing_pools_responses_across_targets_and_counts_people_once(out_result) -> None:  # type: ignore[no-untyped-def]
    row = unit_row(out_result, "a", "relational_capacity", "outgoing")
    # (36 + 10 + 25 + 27) / (9 + 5 + 5 + 9) = 98/28 = 3.5; a1 counts once with 46/14 = 23/7
    assert_row(row, Fraction(7, 2), 3, [Fraction(23, 7), Fraction(5), Fraction(3)])
    # the mean of the tie scores (4, 2, 5, 3) would be 3.5 too, but the per-person values
    # (mean of tie scores per rater: 3, 5, 3) give another sd
    assert row["sd"] != pytest.approx(statistics.stdev([3.0, 5.0, 3.0]))
    assert row["rwg"] is None and row["low_agreement"] is None
    assert row["band"] == "moderate"  # exactly 3.5: not weak
    # subscale communication (items 1-4): a1 → b 16/4, a1 → c 8/4, a2 → b 20/4, a3 → c 12/4
    comm = unit_row(out_result, "a", "relational_capacity", "outgoing", measure="communication")
    assert_row(comm, Fraction(56, 16), 3, [Fraction(3), Fraction(5), Fraction(3)])
    # capacity (items 8, 9): only a1 → b (4, 4) and a3 → c (3, 3)
    cap = unit_row(out_result, "a", "relational_capacity", "outgoing", measure="capacity")
    assert_suppressed(cap)


def test_rule_one_suppresses_rows_under_k_people(out_result) -> None:  # type: ignore[no-untyped-def]
    # R[a,b]: a1 and a2 (a3 not eligible) → 2 people
    assert_suppressed(tie_row(out_result, "a", "b"))
    assert_suppressed(tie_row(out_result, "a", "c"))
    assert tie_row(out_result, "a", "d") is None  # no counted response: no row
    assert_suppressed(unit_row(out_result, "b", "relational_capacity", "incoming"))
    assert unit_row(out_result, "d", "relational_capacity", "incoming") is None
    assert unit_row(out_result, "a", "relational_capacity", "internal") is None
    part = {(r["unit"], r["rollup"]): r for r in out_result.participation.to_dicts()}
    assert sorted(part) == [("a", False), ("b", False)]
    assert part[("a", False)]["respondents"] == 3
    assert part[("a", False)]["response_rate"] == pytest.approx(3 / 4)
    b = part[("b", False)]
    assert b["suppressed"] and b["suppression_reason"] == "min_group_size"
    assert b["respondents"] is None and b["response_rate"] is None and b["headcount"] == 2
    s = out_result.summary
    assert s["respondents"] == 4  # b1 sent nothing scorable but is in the round
    assert s["response_rate"] == pytest.approx(4 / 6)  # always published
    rc = s["scales"]["relational_capacity"]
    assert rc["mean"] == 3.5  # 98/28, 3 people
    net = s["network"]
    assert net["within_mean"] is None  # nobody rates their own unit
    assert net["between_mean"] == 3.5
    assert net["strong_share"] is None and net["reciprocity_gap"] is None
    # a-b and a-c are linked; a-d is not (a3 is not eligible about d), nor b-c, b-d, c-d
    assert net["holes"] == 4
    # no coherence row without any of its inputs; a has only its outgoing row
    assert unit_row(out_result, "a", "coherence", "members") is None


# ---- round 4: a hierarchy ------------------------------------------------------------------
#
#   P (p1) ── X (x1, x2)
#          └─ Y (y1)
#   Z (z1, z2, z3), a root
#
#   p1: P 9×4, X 5×2, Z 9×5        x1: X 9×3, Y 9×5, Z 5×1        x2: X 5×4, P 9×2, Z 9×3
#   y1: Y 9×4, Z 4×5 (not eligible) z1: P 9×1, X 5×3  z2: Y 9×2  z3: Z 9×4, X 5×5
#   leadership: p1, x1, x2, y1 answer its first 5 items with 4, 5, 3, 4
#   safety: p1, x1, x2, y1 answer its first 4 items with raw 5 (scored 1, 5, 1, 5)

TREE_UNITS = [("P", None, 2), ("X", "P", 3), ("Y", "P", 1), ("Z", None, 4)]
TREE_PEOPLE = {1: "P", 2: "X", 3: "X", 4: "Y", 5: "Z", 6: "Z", 7: "Z"}
TREE_RATINGS = [
    (1, "P", 9, 4),
    (1, "X", 5, 2),
    (1, "Z", 9, 5),
    (2, "X", 9, 3),
    (2, "Y", 9, 5),
    (2, "Z", 5, 1),
    (3, "X", 5, 4),
    (3, "P", 9, 2),
    (3, "Z", 9, 3),
    (4, "Y", 9, 4),
    (4, "Z", 4, 5),
    (5, "P", 9, 1),
    (5, "X", 5, 3),
    (6, "Y", 9, 2),
    (7, "Z", 9, 4),
    (7, "X", 5, 5),
]


def tree_round() -> ScoringInput:
    answers: list[Answer] = []
    for person, target, n_items, value in TREE_RATINGS:
        answers += rate(person, target, n_items, value)
    for person, value in ((1, 4), (2, 5), (3, 3), (4, 4)):
        answers += self_answers(person, RL_ITEMS[:5], [value] * 5)
        answers += self_answers(person, PS_ITEMS[:4], [5] * 4)
    return build_input(TREE_UNITS, TREE_PEOPLE, answers)


@pytest.fixture(scope="module")
def tree_result():  # type: ignore[no-untyped-def]
    return reference_score(tree_round())


def test_rollup_rows_treat_the_subtree_as_one_unit(tree_result) -> None:  # type: ignore[no-untyped-def]
    rc = "relational_capacity"
    # internal: raters in {P, X, Y} about units in it
    #   p1 36 + 10 (14), x1 27 + 45 (18), x2 20 + 18 (14), y1 36 (9): 192/55
    internal = unit_row(tree_result, "P", rc, "internal", True)
    person_values = [Fraction(23, 7), Fraction(4), Fraction(19, 7), Fraction(4)]
    assert_row(internal, Fraction(192, 55), 4, person_values)
    assert internal["rwg"] is None  # rwg only on direct internal rows
    assert internal["band"] == "weak"
    # incoming: z1 9 + 15 (14), z2 18 (9), z3 25 (5): 67/28
    incoming = unit_row(tree_result, "P", rc, "incoming", True)
    assert_row(incoming, Fraction(67, 28), 3, [Fraction(12, 7), Fraction(2), Fraction(5)])
    # outgoing: p1 45 (9), x1 5 (5), x2 27 (9); y1 is not eligible about Z: 77/23
    outgoing = unit_row(tree_result, "P", rc, "outgoing", True)
    assert_row(outgoing, Fraction(77, 23), 3, [Fraction(5), Fraction(1), Fraction(3)])
    # only units with children have roll-up rows; roll-up ties are not published
    rollups = tree_result.unit_scores.filter(pl.col("rollup"))["unit"].unique().to_list()
    assert rollups == ["P"]
    # direct rows of X: incoming p1 10 (5), z1 15 (5), z3 25 (5) = 10/3; outgoing x1 and x2 only
    assert_row(
        unit_row(tree_result, "X", rc, "incoming"),
        Fraction(10, 3),
        3,
        [Fraction(2), Fraction(3), Fraction(5)],
    )
    assert_suppressed(unit_row(tree_result, "X", rc, "outgoing"))
    # ties and internal rows agree: R[Z,Z] is z3 alone
    assert_suppressed(tie_row(tree_result, "Z", "Z"))
    assert_suppressed(unit_row(tree_result, "Z", rc, "internal"))


def test_rollup_members_rows_rwg_and_coherence(tree_result) -> None:  # type: ignore[no-untyped-def]
    rl = unit_row(tree_result, "P", "relational_leadership", "members", True)
    # (20 + 25 + 15 + 20) / 20 = 4; each item 4 5 3 4 has variance 2/3: x = 1/3, J = 5 → 10/11
    assert_row(rl, Fraction(4), 4, [Fraction(4), Fraction(5), Fraction(3), Fraction(4)])
    assert rl["rwg"] == pytest.approx(10 / 11, abs=1e-12)
    assert rl["band"] == "moderate"
    # a subscale of the roll-up: framing 4·3, 5·3, 3·3, 4·3 / 12 = 4
    framing = unit_row(tree_result, "P", "relational_leadership", "members", True, "framing")
    assert framing["mean"] == 4.0 and framing["n"] == 4
    assert_suppressed(unit_row(tree_result, "P", "relational_leadership", "members"))
    assert_suppressed(unit_row(tree_result, "X", "relational_leadership", "members"))
    ps = unit_row(tree_result, "P", "psychological_safety", "members", True)
    assert ps["mean"] == 3.0 and ps["sd"] == 0.0 and ps["ci_low"] == ps["ci_high"] == 3.0
    assert ps["rwg"] == 1.0  # no variance at all
    # coherence of P's roll-up: ((192/55 + 67/28) / 2 + 4 + 3) / 3, n the smallest input n
    coherence = unit_row(tree_result, "P", "coherence", "members", True)
    expected = ((Fraction(192, 55) + Fraction(67, 28)) / 2 + 4 + 3) / 3
    assert coherence["mean"] == float(expected)
    assert coherence["n"] == 3 and coherence["band"] == "weak"
    assert coherence["sd"] is None and coherence["rwg"] is None and coherence["ci_low"] is None
    # direct coherence of X: leadership and safety hidden (2 people)
    x = unit_row(tree_result, "X", "coherence", "members")
    assert x["suppressed"] and x["suppression_reason"] == "min_group_size"


def test_network_summary_on_the_hierarchy(tree_result) -> None:  # type: ignore[no-untyped-def]
    s = tree_result.summary
    net = s["network"]
    # internal pairs: p1→P 36/9, x1→X 27/9, x2→X 20/5, y1→Y 36/9, z3→Z 36/9 = 155/41
    assert net["within_mean"] == float(Fraction(155, 41))
    # external pairs: 10+45+45+5+18+27+9+15+18+25 = 217 over 74 responses
    assert net["between_mean"] == float(Fraction(217, 74))
    assert s["scales"]["relational_capacity"]["mean"] == float(Fraction(155 + 217, 41 + 74))
    # P-Y: nobody of either unit rates the other
    assert net["holes"] == 1
    # every external tie has 1 or 2 raters: none published
    assert net["strong_share"] is None and net["weak_share"] is None
    assert s["respondents"] == 7
    assert s["response_rate"] == pytest.approx(7 / 10)
    # participation roll-up: P's subtree holds 4 respondents of headcount 2 + 3 + 1
    part = {(r["unit"], r["rollup"]): r for r in tree_result.participation.to_dicts()}
    assert part[("P", True)]["respondents"] == 4 and part[("P", True)]["headcount"] == 6
    assert part[("P", True)]["response_rate"] == pytest.approx(4 / 6)
    assert part[("Z", False)]["respondents"] == 3
    assert part[("X", False)]["suppression_reason"] == "min_group_size"


def test_row_members_are_the_base_cells_with_counted_responses() -> None:
    members = reference_row_members(tree_round())
    rc = "relational_capacity"
    # P's roll-up outgoing: p1 → Z (9 items), x1 → Z (5), x2 → Z (9); not y1 → Z
    assert members[("P", rc, "index", "outgoing", True)] == frozenset(
        {("P", "Z", i) for i in RC_ITEMS} | {("X", "Z", i) for i in RC_ITEMS}
    )
    assert members[("X", "Y", rc, "communication")] == frozenset(
        ("X", "Y", i) for i in RC_ITEMS[:4]
    )
    assert members[("X", rc, "rc_timely", "incoming", False)] == frozenset(
        {("P", "X", "rc_timely"), ("Z", "X", "rc_timely")}
    )
    rl = "relational_leadership"
    assert members[("P", rl, "index", "members", True)] == frozenset(
        (u, None, i) for u in ("P", "X", "Y") for i in RL_ITEMS[:5]
    )
    # the first 5 leadership items: framing 1-3 and engaging 1-2; no involving row at all
    assert members[("P", rl, "engaging", "members", True)] == frozenset(
        (u, None, i) for u in ("P", "X", "Y") for i in ENGAGING[:2]
    )
    assert ("P", rl, "involving", "members", True) not in members
    assert ("Y", "Z", rc, "index") not in members
    assert not any(key[1] == "coherence" for key in members)
    # every output row (other than coherence) is listed, suppressed or not
    result = reference_score(tree_round())
    unit_keys = {
        tuple(r)
        for r in result.unit_scores.filter(pl.col("scale") != "coherence")
        .select("unit", "scale", "measure", "perspective", "rollup")
        .rows()
    }
    tie_keys = set(result.tie_scores.select("from_unit", "to_unit", "scale", "measure").rows())
    assert set(members) == unit_keys | tie_keys


# ---- change since an earlier round --------------------------------------------------------


def test_change_p_value_comes_from_the_two_published_rows() -> None:
    earlier = rl_round()
    # later: q3 answers one more item (rl_involve_solutions = 2) and becomes eligible
    later_answers = dict(RL_ROUND)
    later_answers[3] = [2, 2, None, 2, 2, None, 2, None, None]
    later = rl_round(later_answers)
    changes = reference_changes(earlier, later)

    def change(measure):  # type: ignore[no-untyped-def]
        rows = changes.filter(
            pl.col("unit") == "v",
            pl.col("scale") == "relational_leadership",
            pl.col("measure") == measure,
            pl.col("perspective") == "members",
            ~pl.col("rollup"),
        ).to_dicts()
        return rows[0] if rows else None

    row = change("index")
    before_values = [4, 21 / 5, 17 / 5, 11 / 3]
    after_values = [4, 21 / 5, 2, 17 / 5, 11 / 3]  # q3: 10/5
    # later pooled mean: (107 + 10) / (28 + 5) = 39/11
    assert row["mean"] == float(Fraction(39, 11))
    assert row["earlier_mean"] == float(Fraction(107, 28))
    assert row["difference"] == float(Fraction(39, 11) - Fraction(107, 28))
    welch = stats.ttest_ind_from_stats(
        39 / 11,
        statistics.stdev(after_values),
        5,
        107 / 28,
        statistics.stdev(before_values),
        4,
        equal_var=False,
    )
    assert row["p_value"] == pytest.approx(welch.pvalue, abs=1e-12)
    # not the Welch test on the person values (whose means are not the published means)
    raw = stats.ttest_ind(after_values, before_values, equal_var=False)
    assert row["p_value"] != pytest.approx(raw.pvalue, abs=1e-9)
    # rl_engage_recognise has 2 people in both rounds: never published, no change row
    assert change("rl_engage_recognise") is None
    assert change("rl_involve_solutions")["difference"] == pytest.approx(
        float(Fraction(14, 4) - Fraction(12, 3))  # (5 + 4 + 2 + 3)/4 − (5 + 4 + 3)/3
    )
    assert changes.columns == [
        "unit",
        "scale",
        "measure",
        "perspective",
        "rollup",
        "mean",
        "earlier_mean",
        "difference",
        "p_value",
    ]


def test_change_p_value_is_null_without_sd() -> None:
    changes = reference_changes(tree_round(), tree_round())
    coherence = changes.filter(pl.col("scale") == "coherence").to_dicts()
    assert coherence and all(r["p_value"] is None and r["difference"] == 0 for r in coherence)
    # the safety roll-up has sd 0 in both rounds: scipy gives NaN, published as null
    ps = changes.filter(
        pl.col("scale") == "psychological_safety", pl.col("measure") == "index"
    ).to_dicts()
    assert [r["p_value"] for r in ps] == [None]


# ---- determinism and frame shapes ----------------------------------------------------------


def test_row_order_does_not_matter_and_frames_are_sorted() -> None:
    inp = tree_round()
    order = list(range(inp.answers.height))
    random.Random(4).shuffle(order)
    shuffled = ScoringInput(
        inp.instrument,
        inp.units.reverse(),
        inp.respondents.reverse(),
        inp.answers[order],
        inp.settings,
    )
    a, b = reference_score(inp), reference_score(shuffled)
    assert a.unit_scores.equals(b.unit_scores)
    assert a.tie_scores.equals(b.tie_scores)
    assert a.participation.equals(b.participation)
    assert a.summary == b.summary
    keys = ["unit", "scale", "measure", "perspective", "rollup"]
    assert a.unit_scores.equals(a.unit_scores.sort(keys))
    assert a.tie_scores.equals(a.tie_scores.sort(["from_unit", "to_unit", "scale", "measure"]))
    assert a.participation.equals(a.participation.sort(["unit", "rollup"]))
    # one row per cell with n ≥ 1: published rows have n ≥ k
    published = a.unit_scores.filter(~pl.col("suppressed"), pl.col("scale") != "coherence")
    assert published["n"].min() >= 3


def test_correlation_and_reciprocity_on_a_larger_round() -> None:
    from coherence_core.synthetic import generate_organisation, to_scoring_input

    inp = to_scoring_input(generate_organisation(600, 25, seed=3), ScoringSettings())
    result = reference_score(inp)
    rows = result.unit_scores.filter(pl.col("measure") == "index", ~pl.col("rollup"))
    rl = rows.filter(pl.col("scale") == "relational_leadership", ~pl.col("suppressed"))
    rc = rows.filter(pl.col("perspective") == "incoming", ~pl.col("suppressed"))
    both = rl.join(rc, on="unit").sort("unit")
    lc = result.summary["leadership_collaboration"]
    assert lc["n_units"] == both.height >= 4
    pearson = stats.pearsonr(both["mean"], both["mean_right"])
    spearman = stats.spearmanr(both["mean"], both["mean_right"])
    assert lc["pearson_r"] == pytest.approx(pearson.statistic, abs=1e-12)
    assert lc["pearson_p"] == pytest.approx(pearson.pvalue, abs=1e-12)
    assert lc["spearman_rho"] == pytest.approx(spearman.statistic, abs=1e-12)
    assert lc["spearman_p"] == pytest.approx(spearman.pvalue, abs=1e-12)
    ties = result.tie_scores.filter(
        pl.col("measure") == "index",
        ~pl.col("suppressed"),
        pl.col("from_unit") != pl.col("to_unit"),
    )
    means = {(a, b): m for a, b, m in ties.select("from_unit", "to_unit", "mean").rows()}
    gaps = [abs(m - means[(b, a)]) for (a, b), m in means.items() if a < b and (b, a) in means]
    assert result.summary["network"]["reciprocity_gap"] == pytest.approx(statistics.mean(gaps))
    # every published row pools ≥ k people; suppression is rule 1 only
    reasons = result.unit_scores["suppression_reason"].drop_nulls().unique().to_list()
    assert reasons == ["min_group_size"]
