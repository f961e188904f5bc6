"""The reference implementation itself, on a round small enough to check by hand.

Units (k = 3)::

    a (1 member: r0)          d (5 members: r8..r12), a root without children
    ├── b (4 members: r1..r4)
    └── c (3 members: r5..r7)

Instrument: relational capacity ``rc1..rc3`` (unit, needs 2 answers), relational leadership
``rl1, rl2`` (needs 1), psychological safety ``ps1`` (reversed) and ``ps2`` (recoded
1→1, 2→2, 3→3, 4→5, 5→5; needs 1).
"""

from __future__ import annotations

import math
import statistics

import polars as pl
import pytest
from scipy import stats

from coherence_core.instruments import InstrumentDefinition
from coherence_scoring.engine.types import ScoringInput, ScoringSettings
from tests.reference import reference_score

A, B, C, D = 0, 1, 2, 3
EXT = {A: "a", B: "b", C: "c", D: "d"}
HOME = {0: A, 1: B, 2: B, 3: B, 4: B, 5: C, 6: C, 7: C, 8: D, 9: D, 10: D, 11: D, 12: D}

INSTRUMENT = InstrumentDefinition.model_validate(
    {
        "key": "tiny",
        "name": {"en": "Tiny"},
        "scales": [
            {
                "key": "relational_capacity",
                "targeting": "unit",
                "items": [{"key": f"rc{i}", "text": {"en": f"rc {i}"}} for i in (1, 2, 3)],
            },
            {
                "key": "relational_leadership",
                "targeting": "self",
                "items": [{"key": f"rl{i}", "text": {"en": f"rl {i}"}} for i in (1, 2)],
            },
            {
                "key": "psychological_safety",
                "targeting": "self",
                "items": [
                    {"key": "ps1", "reversed": True, "text": {"en": "ps 1"}},
                    {
                        "key": "ps2",
                        "recode": {1: 1, 2: 2, 3: 3, 4: 5, 5: 5},
                        "text": {"en": "ps 2"},
                    },
                ],
            },
        ],
    }
)
ITEM = INSTRUMENT.item_index

# raw answers; None = "don't know"; a missing key = not asked / left out
RL = {
    0: (4, 5),
    1: (3, 4),
    2: (5, 5),
    3: (2, None),
    4: (4, 4),
    5: (3, 3),
    6: (4,),
    7: (5, 4),
    8: (3, 3),
    9: (4, 4),
    10: (5, 5),
    11: (2, 3),
    12: (4, 5),
}
PS = {r: ((r % 5) + 1, ((r * 2) % 5) + 1) for r in HOME}
# who rates whom (relational capacity targets)
TARGETS = {
    0: [A, D],
    1: [B, D, C],
    2: [B, D, C],
    3: [B, D],
    4: [B, D],
    5: [C, B, D],
    6: [C, B, D],
    7: [C, A],
    8: [D, B],
    9: [D, B],
    10: [D, B],
    11: [D, B],
    12: [D, B],
}


def rc_raw(r: int, t: int) -> list[int | None]:
    values: list[int | None] = [((r + 2 * t + i) % 5) + 1 for i in range(3)]
    if r == 3 and t == D:
        values[1] = None  # still 2 of 3 answered
    return values


def build_input(k: int = 3) -> ScoringInput:
    units = pl.DataFrame(
        {
            "unit": [A, B, C, D],
            "external_id": ["a", "b", "c", "d"],
            "parent": [None, A, A, None],
            "headcount": [2, 5, None, 10],
        },
        schema={
            "unit": pl.Int32,
            "external_id": pl.String,
            "parent": pl.Int32,
            "headcount": pl.Int32,
        },
    )
    respondents = pl.DataFrame(
        {"respondent": list(HOME), "unit": list(HOME.values())},
        schema={"respondent": pl.Int64, "unit": pl.Int32},
    )
    rows: list[tuple[int, int | None, int, int | None]] = []
    for r in HOME:
        for i, v in enumerate(RL[r]):
            rows.append((r, None, ITEM[f"rl{i + 1}"], v))
        for i, v in enumerate(PS[r]):
            rows.append((r, None, ITEM[f"ps{i + 1}"], v))
        for t in TARGETS[r]:
            for i, v in enumerate(rc_raw(r, t)):
                rows.append((r, t, ITEM[f"rc{i + 1}"], v))
    # a respondent below the min-answers rule for one tie: 1 of 3 answered about c
    rows.append((8, C, ITEM["rc1"], 5))
    answers = pl.DataFrame(
        rows,
        schema={"respondent": pl.Int64, "target": pl.Int32, "item": pl.Int16, "value": pl.Int16},
        orient="row",
    )
    return ScoringInput(INSTRUMENT, units, respondents, answers, ScoringSettings(min_group_size=k))


# ---- expected values computed directly from the answers above -------------------------------


def answered(r: int) -> list[int]:
    """r's relational leadership answers other than "don't know"."""
    return [v for v in RL[r] if v is not None]


def rl_score(r: int) -> float:
    return statistics.mean(answered(r))


def ps_score(r: int) -> float:
    ps1, ps2 = PS[r]
    recoded = {1: 1, 2: 2, 3: 3, 4: 5, 5: 5}[ps2]
    return statistics.mean([6 - ps1, recoded])


def tie(r: int, t: int) -> float:
    return statistics.mean(v for v in rc_raw(r, t) if v is not None)


def describe(values: list[float]) -> dict[str, float]:
    n = len(values)
    mean = statistics.mean(values)
    sd = statistics.stdev(values)
    lo, hi = stats.t.interval(0.95, n - 1, loc=mean, scale=sd / math.sqrt(n))
    return {"n": n, "mean": mean, "sd": sd, "ci_low": lo, "ci_high": hi}


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    return reference_score(build_input())


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


def tie_row(result, a, b, measure="index"):  # type: ignore[no-untyped-def]
    rows = result.tie_scores.filter(
        pl.col("from_unit") == a, pl.col("to_unit") == b, pl.col("measure") == measure
    ).to_dicts()
    return rows[0] if rows else None


def assert_stats(row, values) -> None:  # type: ignore[no-untyped-def]
    expected = describe(values)
    assert row["n"] == expected["n"]
    for key in ("mean", "sd", "ci_low", "ci_high"):
        assert row[key] == pytest.approx(expected[key], abs=1e-12), key
    assert not row["suppressed"]


def test_members_rows_with_reversal_recode_and_rwg(result) -> None:  # type: ignore[no-untyped-def]
    row = unit_row(result, "d", "psychological_safety", "members")
    assert_stats(row, [ps_score(r) for r in range(8, 13)])
    # rwg(J) over ps1, ps2 (scored), σ²_EU = 2
    s1 = statistics.variance([6 - PS[r][0] for r in range(8, 13)])
    s2 = statistics.variance([{1: 1, 2: 2, 3: 3, 4: 5, 5: 5}[PS[r][1]] for r in range(8, 13)])
    x = (s1 + s2) / 2 / 2.0
    expected = 0.0 if x >= 1 else 2 * (1 - x) / (2 * (1 - x) + x)
    assert row["rwg"] == pytest.approx(expected, abs=1e-12)
    assert row["low_agreement"] == (expected < 0.7)
    item = unit_row(result, "d", "psychological_safety", "members", measure="ps1")
    assert item["mean"] == pytest.approx(statistics.mean(6 - PS[r][0] for r in range(8, 13)))
    assert item["rwg"] == pytest.approx(max(0.0, 1 - s1 / 2.0))
    assert item["band"] is None
    # b: r3 answered rl1 only ("don't know" for rl2) and still has a score (1 of 2 needed)
    rl_b = unit_row(result, "b", "relational_leadership", "members")
    assert_stats(rl_b, [rl_score(r) for r in (1, 2, 3, 4)])
    mean = rl_b["mean"]
    assert rl_b["band"] == ("weak" if mean < 3.5 else "strong" if mean > 4.0 else "moderate")


def test_ties_internal_incoming_outgoing(result) -> None:  # type: ignore[no-untyped-def]
    assert_stats(tie_row(result, "b", "d"), [tie(r, D) for r in (1, 2, 3, 4)])
    assert_stats(tie_row(result, "d", "d"), [tie(r, D) for r in range(8, 13)])
    assert_stats(
        unit_row(result, "d", "relational_capacity", "internal"), [tie(r, D) for r in range(8, 13)]
    )
    # incoming of d: raters from a, b and c (each once)
    incoming = [tie(r, D) for r in (0, 1, 2, 3, 4, 5, 6)]
    assert_stats(unit_row(result, "d", "relational_capacity", "incoming"), incoming)
    assert unit_row(result, "d", "relational_capacity", "incoming")["rwg"] is None
    # outgoing of d: per member, the mean of their ties to other units
    outgoing = [statistics.mean(tie(r, t) for t in TARGETS[r] if t != D) for r in range(8, 13)]
    assert_stats(unit_row(result, "d", "relational_capacity", "outgoing"), outgoing)
    # outgoing of b pools R[b,d] (4 raters) and R[b,c] (r1, r2: suppressed): hidden with them
    b_out = unit_row(result, "b", "relational_capacity", "outgoing")
    assert b_out["suppressed"] and b_out["suppression_reason"] == "complementary"
    # outgoing of c pools the suppressed R[c,a], R[c,b], R[c,d]: 3 raters (k), published
    assert not unit_row(result, "c", "relational_capacity", "outgoing")["suppressed"]
    # r8's single answer about c does not make a tie score
    assert tie_row(result, "d", "c") is None


def test_rollup_rows_pool_the_subtree(result) -> None:  # type: ignore[no-untyped-def]
    inside = {A, B, C}
    internal = [statistics.mean(tie(r, t) for t in TARGETS[r] if t in inside) for r in range(0, 8)]
    assert_stats(unit_row(result, "a", "relational_capacity", "internal", True), internal)
    outgoing = [
        statistics.mean(tie(r, t) for t in TARGETS[r] if t not in inside)
        for r in range(0, 8)
        if any(t not in inside for t in TARGETS[r])
    ]
    assert_stats(unit_row(result, "a", "relational_capacity", "outgoing", True), outgoing)
    incoming = [tie(r, B) for r in range(8, 13)]
    assert_stats(unit_row(result, "a", "relational_capacity", "incoming", True), incoming)
    rl = unit_row(result, "a", "relational_leadership", "members", True)
    assert_stats(rl, [rl_score(r) for r in range(0, 8)])
    assert rl["rwg"] is not None
    assert unit_row(result, "a", "relational_capacity", "internal", True)["rwg"] is None
    assert unit_row(result, "d", "relational_leadership", "members", True) is None


def test_rule_one_and_hierarchy_complementary_suppression(result) -> None:  # type: ignore[no-untyped-def]
    a = unit_row(result, "a", "relational_leadership", "members")
    assert a["suppressed"] and a["suppression_reason"] == "min_group_size"
    assert a["n"] is None and a["mean"] is None and a["rwg"] is None and a["band"] is None
    # a's roll-up (8) = a (1, suppressed) + b (4) + c (3): c, the smallest, goes too
    c = unit_row(result, "c", "relational_leadership", "members")
    assert c["suppressed"] and c["suppression_reason"] == "complementary"
    assert c["mean"] is None and c["n"] is None
    assert not unit_row(result, "b", "relational_leadership", "members")["suppressed"]
    assert not unit_row(result, "a", "relational_leadership", "members", True)["suppressed"]
    # same for participation
    part = {(r["unit"], r["rollup"]): r for r in result.participation.to_dicts()}
    assert part[("a", False)]["suppression_reason"] == "min_group_size"
    assert part[("c", False)]["suppression_reason"] == "complementary"
    assert part[("c", False)]["respondents"] is None
    assert part[("b", False)]["respondents"] == 4
    assert part[("b", False)]["response_rate"] == pytest.approx(4 / 5)
    assert part[("a", True)]["respondents"] == 8
    assert part[("a", True)]["headcount"] is None  # c's headcount is unknown
    assert part[("d", False)]["response_rate"] == pytest.approx(5 / 10)
    assert ("d", True) not in part


def test_incoming_column_complementary_suppression(result) -> None:  # type: ignore[no-untyped-def]
    # incoming of b: from c (2 raters, suppressed) and d (5): d's tie must go too
    assert tie_row(result, "c", "b")["suppression_reason"] == "min_group_size"
    db = tie_row(result, "d", "b")
    assert db["suppressed"] and db["suppression_reason"] == "complementary"
    assert not unit_row(result, "b", "relational_capacity", "incoming")["suppressed"]
    # incoming of d: a (1) + c (2) suppressed hold 3 = k: b's tie stays published
    assert tie_row(result, "a", "d")["suppression_reason"] == "min_group_size"
    assert tie_row(result, "c", "d")["suppression_reason"] == "min_group_size"
    assert not tie_row(result, "b", "d")["suppressed"]


def test_coherence(result) -> None:  # type: ignore[no-untyped-def]
    row = unit_row(result, "b", "coherence", "members")
    internal = statistics.mean(tie(r, B) for r in (1, 2, 3, 4))
    incoming = statistics.mean(tie(r, B) for r in (5, 6, 8, 9, 10, 11, 12))
    rl = statistics.mean(rl_score(r) for r in (1, 2, 3, 4))
    ps = statistics.mean(ps_score(r) for r in (1, 2, 3, 4))
    assert row["mean"] == pytest.approx(((internal + incoming) / 2 + rl + ps) / 3, abs=1e-12)
    assert row["n"] == 4
    assert row["sd"] is None and row["ci_low"] is None and row["rwg"] is None
    assert row["band"] is not None
    # c: leadership and safety are complementary-suppressed
    assert unit_row(result, "c", "coherence", "members")["suppression_reason"] == "complementary"
    assert unit_row(result, "a", "coherence", "members")["suppression_reason"] == "min_group_size"
    # d: incoming is published; coherence uses internal and incoming
    assert not unit_row(result, "d", "coherence", "members")["suppressed"]


def test_summary(result) -> None:  # type: ignore[no-untyped-def]
    s = result.summary
    assert s["respondents"] == 13
    # units with known headcount: a (1 of 2, hidden), b (4 of 5), d (5 of 10): the rate × 17
    # − b − d would give a's 1 respondent, so it is null (rule 2 on the summary)
    assert s["response_rate"] is None
    rl = s["scales"]["relational_leadership"]
    assert rl["mean"] == pytest.approx(statistics.mean(rl_score(r) for r in HOME))
    # alpha over complete cases (both items answered)
    complete = [answered(r) for r in HOME if len(answered(r)) == 2]
    item_var = sum(statistics.variance([c[i] for c in complete]) for i in (0, 1))
    total_var = statistics.variance([c[0] + c[1] for c in complete])
    assert rl["alpha"] == pytest.approx(2 * (1 - item_var / total_var))
    # ICC over units with ≥ 2 scores (b, c, d; a has 1)
    groups = [[rl_score(r) for r in HOME if HOME[r] == u] for u in (B, C, D)]
    n = sum(map(len, groups))
    grand = statistics.mean(x for g in groups for x in g)
    msb = sum(len(g) * (statistics.mean(g) - grand) ** 2 for g in groups) / 2
    msw = sum((x - statistics.mean(g)) ** 2 for g in groups for x in g) / (n - 3)
    k_bar = (n - sum(len(g) ** 2 for g in groups) / n) / 2
    assert rl["icc1"] == pytest.approx((msb - msw) / (msb + (k_bar - 1) * msw))
    assert rl["icc2"] == pytest.approx((msb - msw) / msb)
    rc = s["scales"]["relational_capacity"]
    net = s["network"]
    # a's internal row (r0 alone) is hidden: within_mean × 13 − b − c − d would give r0's tie
    assert net["within_mean"] is None
    # the hidden incoming rows, a (r7) and c (r1, r2), hold 3 distinct raters = k
    assert net["between_mean"] == pytest.approx(
        statistics.mean(tie(r, t) for r in HOME for t in TARGETS[r] if t != HOME[r])
    )
    # the mean pools both: mean and between_mean would give within_mean, so it is null too
    assert rc["mean"] is None
    # pairs: a-b, a-c, a-d, b-c, b-d, c-d; a-b is never rated either way
    assert net["holes"] == 1
    # published external ties: b→d only (d→b complementary, the others too small)
    published = result.tie_scores.filter(
        pl.col("measure") == "index",
        ~pl.col("suppressed"),
        pl.col("from_unit") != pl.col("to_unit"),
    )
    assert published.select("from_unit", "to_unit").rows() == [("b", "d")]
    band = published["band"][0]
    assert net["strong_share"] == (1.0 if band == "strong" else 0.0)
    assert net["reciprocity_gap"] is None
    assert s["leadership_collaboration"] is None  # fewer than 4 units qualify


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


def test_rule_two_holds_everywhere_on_a_synthetic_round() -> None:
    """Suppressed parts of every family hold 0 or ≥ k respondents (counted from the rows)."""
    from coherence_core.synthetic import generate_organisation, to_scoring_frames

    org = generate_organisation(500, 40, seed=8, tiny_unit_share=0.3)
    units, respondents, answers = to_scoring_frames(org)
    k = 5
    inp = ScoringInput(org.instrument, units, respondents, answers, ScoringSettings(k))
    result = reference_score(inp)
    # true n of a suppressed row, recomputed from the respondents: members rows and ties
    home = dict(zip(respondents["respondent"], respondents["unit"], strict=True))
    ext = dict(zip(units["unit"], units["external_id"], strict=True))
    parent = {
        ext[u]: (ext[p] if p is not None else None)
        for u, p in units.select("unit", "parent").rows()
    }
    per_unit: dict[str, int] = {}
    for u in home.values():
        per_unit[ext[u]] = per_unit.get(ext[u], 0) + 1
    part = {(r["unit"], r["rollup"]): r for r in result.participation.to_dicts()}
    children: dict[str | None, list[str]] = {}
    for u, p in parent.items():
        children.setdefault(p, []).append(u)

    def subtree_n(u: str) -> int:
        return per_unit.get(u, 0) + sum(subtree_n(c) for c in children.get(u, []))

    def check(parts: list[tuple[str, bool]]) -> None:
        held = 0
        for unit, rollup in parts:
            row = part.get((unit, rollup))
            if row is not None and row["suppressed"]:
                held += subtree_n(unit) if rollup else per_unit.get(unit, 0)
        assert held == 0 or held >= k, parts

    for p, kids in children.items():
        if p is None:
            check([(c, bool(children.get(c))) for c in kids])
        else:
            check([(p, False)] + [(c, bool(children.get(c))) for c in kids])
    assert result.participation["suppression_reason"].drop_nulls().n_unique() == 2


def test_k5_suppresses_more() -> None:
    result = reference_score(build_input(k=5))
    b = unit_row(result, "b", "relational_leadership", "members")
    assert b["suppression_reason"] == "min_group_size"
    # everything under a is below 5, so a's roll-up (8) must hide with its parts' remainder;
    # organisation family: a's roll-up (8) and d (5) are both published
    assert not unit_row(result, "a", "relational_leadership", "members", True)["suppressed"]
    assert result.summary["scales"]["relational_leadership"]["mean"] is not None


def test_changes_since_an_earlier_round() -> None:
    from tests.reference import reference_changes

    earlier = build_input()
    bumped = earlier.answers.with_columns(
        pl.when(pl.col("item") == ITEM["rl1"], pl.col("value") < 5)
        .then(pl.col("value") + 1)
        .otherwise(pl.col("value"))
        .alias("value")
    )
    later = ScoringInput(INSTRUMENT, earlier.units, earlier.respondents, bumped, earlier.settings)
    changes = reference_changes(earlier, later)
    row = changes.filter(
        pl.col("unit") == "d",
        pl.col("scale") == "relational_leadership",
        pl.col("measure") == "index",
        pl.col("perspective") == "members",
        ~pl.col("rollup"),
    ).to_dicts()[0]
    before = [rl_score(r) for r in range(8, 13)]
    after = [statistics.mean([min(answered(r)[0] + 1, 5), answered(r)[1]]) for r in range(8, 13)]
    assert row["earlier_mean"] == pytest.approx(statistics.mean(before))
    assert row["difference"] == pytest.approx(statistics.mean(after) - statistics.mean(before))
    welch = stats.ttest_ind(after, before, equal_var=False)
    assert row["p_value"] == pytest.approx(welch.pvalue)
    # only rows published in both rounds: a's direct row (1 member) never appears
    assert changes.filter(pl.col("unit") == "a", ~pl.col("rollup")).height == 0
