"""The protection (engine/protection/, SCORING.md §5) on handcrafted rounds that can be checked
by hand.

Every round uses the built-in instrument ``coherence-v1`` and gives each respondent one value for
every item of a scale (``same``), so a person's responses to a scale are all equal and a row's
pooled mean is the mean of its people's values — the comments compute it. Items are reversed
only in psychological safety (case (c) works it out). k = 3 unless said otherwise.

Besides the engine's frames, most cases run the independent attacker's-LP auditor
(tests/privacy/lp_audit.py) over the publication, and ``Attack.mean_range`` shows what a reader
can pin a small group to: the full range 1..5 unless the case says otherwise.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pytest

from coherence_core.instruments import InstrumentDefinition, builtin_instrument
from coherence_core.synthetic import generate_organisation, to_scoring_input
from coherence_scoring.engine import protection as engine_protection
from coherence_scoring.engine import score
from coherence_scoring.engine import scoring as engine_scoring
from coherence_scoring.engine.protection import UnsafePublication
from coherence_scoring.engine.types import (
    ANSWERS_SCHEMA,
    RESPONDENTS_SCHEMA,
    UNITS_SCHEMA,
    ScoringInput,
    ScoringResult,
    ScoringSettings,
)
from tests.privacy.lp_audit import Attack, PublicationModel, RowKey, assert_private, audit

V1 = builtin_instrument("coherence-v1")
RC_SCALE, RL_SCALE, PS_SCALE = (
    "relational_capacity",
    "relational_leadership",
    "psychological_safety",
)


def keys_of(scale: str, instrument: InstrumentDefinition = V1) -> list[str]:
    found = instrument.scale(scale)
    assert found is not None
    return [item.key for item in found.items]


RC, RL, PS = keys_of(RC_SCALE), keys_of(RL_SCALE), keys_of(PS_SCALE)
#: 9 items, 3 subscales and the index: the measures of relational capacity / leadership
MEASURES_9 = 13
#: t(0.975, 2), for the 95% interval of three people
T_975_2 = 4.302652729749464


def same(keys: list[str], value: int | None) -> dict[str, int | None]:
    return dict.fromkeys(keys, value)


# --------------------------------------------------------------------------------------------
# A small round builder (a copy of tests/scoring/engine/builders.py's, kept here on purpose)
# --------------------------------------------------------------------------------------------


@dataclass
class Round:
    units: list[tuple[str, str | None]] = field(default_factory=list)
    people: list[tuple[int, str]] = field(default_factory=list)
    answers: list[tuple[int, str | None, str, int | None]] = field(default_factory=list)

    def unit(self, external_id: str, parent: str | None = None) -> str:
        self.units.append((external_id, parent))
        return external_id

    def person(
        self,
        unit: str,
        answers: Mapping[str, int | None] | None = None,
        about: Mapping[str, Mapping[str, int | None]] | None = None,
    ) -> int:
        rid = 1000 + len(self.people)
        self.people.append((rid, unit))
        for key, value in (answers or {}).items():
            self.answers.append((rid, None, key, value))
        for target, items in (about or {}).items():
            for key, value in items.items():
                self.answers.append((rid, target, key, value))
        return rid

    def people_in(
        self,
        unit: str,
        count: int,
        answers: Mapping[str, int | None] | None = None,
        about: Mapping[str, Mapping[str, int | None]] | None = None,
    ) -> list[int]:
        return [self.person(unit, answers, about) for _ in range(count)]

    def inputs(self, k: int = 3) -> ScoringInput:
        index = {ext: i for i, (ext, _) in enumerate(self.units)}
        items = V1.item_index
        return ScoringInput(
            instrument=V1,
            units=pl.DataFrame(
                {
                    "unit": list(range(len(self.units))),
                    "external_id": [u[0] for u in self.units],
                    "parent": [None if u[1] is None else index[u[1]] for u in self.units],
                    "headcount": [None] * len(self.units),
                },
                schema=UNITS_SCHEMA,
            ),
            respondents=pl.DataFrame(
                {
                    "respondent": [p[0] for p in self.people],
                    "unit": [index[p[1]] for p in self.people],
                },
                schema=RESPONDENTS_SCHEMA,
            ),
            answers=pl.DataFrame(
                {
                    "respondent": [a[0] for a in self.answers],
                    "target": [None if a[1] is None else index[a[1]] for a in self.answers],
                    "item": [items[a[2]] for a in self.answers],
                    "value": [a[3] for a in self.answers],
                },
                schema=ANSWERS_SCHEMA,
            ),
            settings=ScoringSettings(min_group_size=k),
        )


def unit_row(
    result: ScoringResult,
    unit: str,
    scale: str = RL_SCALE,
    perspective: str = "members",
    rollup: bool = False,
    measure: str = "index",
) -> dict[str, Any]:
    found = result.unit_scores.filter(
        pl.col("unit") == unit,
        pl.col("scale") == scale,
        pl.col("perspective") == perspective,
        pl.col("rollup") == rollup,
        pl.col("measure") == measure,
    )
    assert found.height == 1, f"{found.height} rows for {unit} {scale} {perspective} {rollup}"
    return found.row(0, named=True)


def tie_row(result: ScoringResult, a: str, b: str, measure: str = "index") -> dict[str, Any]:
    found = result.tie_scores.filter(
        pl.col("from_unit") == a, pl.col("to_unit") == b, pl.col("measure") == measure
    )
    assert found.height == 1, f"{found.height} tie rows {a} -> {b} {measure}"
    return found.row(0, named=True)


def status(row: dict[str, Any]) -> tuple[bool, str | None]:
    return row["suppressed"], row["suppression_reason"]


PUBLISHED = (False, None)
RULE_ONE = (True, "min_group_size")
COMPLEMENTARY = (True, "complementary")


def family_status(rows: pl.DataFrame) -> set[tuple[bool, str | None]]:
    """The distinct statuses of a set of rows (a family is hidden or published together)."""
    return set(rows.select("suppressed", "suppression_reason").iter_rows())


def lone_range(
    inp: ScoringInput, result: ScoringResult, person: int, key: RowKey
) -> tuple[float, float]:
    found = Attack([(inp, result)]).mean_range([person], key)
    assert found is not None
    return round(found[0], 9), round(found[1], 9)


def people_of(inp: ScoringInput, key: RowKey) -> int:
    return len(PublicationModel(inp).people(key))


# --------------------------------------------------------------------------------------------
# (a) rule 1 at k − 1 and k
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [3, 4, 5])
def test_rule_one_hides_k_minus_one_people_and_publishes_k(k: int) -> None:
    def one_unit(members: int) -> tuple[ScoringInput, ScoringResult]:
        rnd = Round()
        rnd.unit("u")
        # values 2, 4, 2, 4, …: relational leadership
        for i in range(members):
            rnd.person("u", same(RL, 2 if i % 2 == 0 else 4))
        inp = rnd.inputs(k=k)
        return inp, score(inp)

    inp, small = one_unit(k - 1)
    rows = small.unit_scores.filter(pl.col("scale") == RL_SCALE)
    assert rows.height == MEASURES_9
    assert family_status(rows) == {RULE_ONE}
    for column in ("n", "mean", "sd", "ci_low", "ci_high", "rwg", "band", "low_agreement"):
        assert rows[column].null_count() == rows.height, column
    assert small.summary["scales"][RL_SCALE]["mean"] is None
    participation = small.participation.row(0, named=True)
    assert status(participation) == RULE_ONE and participation["respondents"] is None
    assert_private([(inp, small)])

    inp, enough = one_unit(k)
    index = unit_row(enough, "u")
    assert status(index) == PUBLISHED
    # k people with values 2, 4, 2, …: mean = (2·ceil(k/2) + 4·floor(k/2)) / k
    expected = (2 * ((k + 1) // 2) + 4 * (k // 2)) / k
    assert index["n"] == k and index["mean"] == pytest.approx(expected)
    assert family_status(enough.unit_scores.filter(pl.col("scale") == RL_SCALE)) == {PUBLISHED}
    assert enough.summary["scales"][RL_SCALE]["mean"] == pytest.approx(expected)
    assert enough.diagnostics["rows_complementary"] == 0
    assert_private([(inp, enough)])


def test_rule_one_on_a_tie_at_k_minus_one_and_k() -> None:
    """Two raters of b are hidden with every row that holds only them; three are published."""
    rnd = Round()
    rnd.unit("b")
    rnd.unit("x")
    rnd.people_in("x", 2, about={"b": same(RC, 4)})
    inp = rnd.inputs()
    result = score(inp)
    assert status(tie_row(result, "x", "b")) == RULE_ONE
    assert status(unit_row(result, "b", RC_SCALE, "incoming")) == RULE_ONE
    assert status(unit_row(result, "x", RC_SCALE, "outgoing")) == RULE_ONE
    assert result.summary["network"]["between_mean"] is None
    assert_private([(inp, result)])

    rnd.person("x", about={"b": same(RC, 1)})
    inp = rnd.inputs()
    result = score(inp)
    # (4 + 4 + 1) / 3 = 3.0 in the tie, its incoming column, its outgoing row and the summary
    for row in (
        tie_row(result, "x", "b"),
        unit_row(result, "b", RC_SCALE, "incoming"),
        unit_row(result, "x", RC_SCALE, "outgoing"),
    ):
        assert status(row) == PUBLISHED and row["n"] == 3 and row["mean"] == pytest.approx(3.0)
    assert result.summary["network"]["between_mean"] == pytest.approx(3.0)
    assert_private([(inp, result)])


def test_a_row_of_fewer_than_k_people_is_suppressed_for_min_group_size() -> None:
    """z's one person rates b (a 1-rater tie): z's outgoing row holds that one person. The
    incoming view first would hide it too, but its reason stays rule 1 (SCORING.md §5.1)."""
    rnd = Round()
    for unit in ("b", "x", "z"):
        rnd.unit(unit)
    rnd.people_in("x", 3, about={"b": same(RC, 4)})
    rnd.person("z", about={"b": same(RC, 1)})
    inp = rnd.inputs()
    result = score(inp)
    assert people_of(inp, RowKey.unit_row("z", RC_SCALE, "index", "outgoing")) == 1
    assert status(tie_row(result, "z", "b")) == RULE_ONE
    assert status(unit_row(result, "z", RC_SCALE, "outgoing")) == RULE_ONE


def test_every_suppression_reason_matches_the_rows_size() -> None:
    """A hidden row of < k people says min_group_size, a hidden row of ≥ k people
    complementary (case (e)'s round: rule 1, the incoming view first and the repair)."""
    inp, result = incoming_column_round()
    model = PublicationModel(inp)
    for source in ("unit_scores", "tie_scores"):
        for record in getattr(result, source).iter_rows(named=True):
            if not record["suppressed"] or record["scale"] == "coherence":
                continue
            key = RowKey.of(record)
            people = len(model.people(key))
            expected = "min_group_size" if people < 3 else "complementary"
            assert record["suppression_reason"] == expected, (key, people)


# --------------------------------------------------------------------------------------------
# (b) a small unit next to a published sibling
# --------------------------------------------------------------------------------------------


def test_a_small_child_is_not_the_remainder_of_its_parents_roll_up() -> None:
    """p (no members of its own) has children a (1 person, value 2) and b (3 people, 4); q is a
    second root (3 people, 5). Relational leadership, k = 3.

    Rule 1 hides a. With b published, p's roll-up − b = a; hiding p's roll-up instead would not
    do (organisation mean − q − b = a). The engine hides b (complementary): a and b then form one
    hidden group of 4 people, and only its total is published (p's roll-up).
    """
    rnd = Round()
    rnd.unit("p")
    rnd.unit("a", "p")
    rnd.unit("b", "p")
    rnd.unit("q")
    (lone,) = rnd.people_in("a", 1, same(RL, 2))
    rnd.people_in("b", 3, same(RL, 4))
    rnd.people_in("q", 3, same(RL, 5))
    inp = rnd.inputs()
    result = score(inp)

    assert status(unit_row(result, "a")) == RULE_ONE
    assert family_status(
        result.unit_scores.filter(pl.col("unit") == "b", pl.col("scale") == RL_SCALE)
    ) == {COMPLEMENTARY}
    rollup = unit_row(result, "p", rollup=True)
    # (2 + 3·4) / 4 = 3.5, second moments withheld (it pools hidden base cells)
    assert status(rollup) == PUBLISHED
    assert (rollup["n"], rollup["mean"], rollup["sd"], rollup["rwg"]) == (4, 3.5, None, None)
    assert unit_row(result, "q")["mean"] == 5.0
    # (2 + 12 + 15) / 7
    assert result.summary["scales"][RL_SCALE]["mean"] == pytest.approx(29 / 7)
    assert result.diagnostics["rows_complementary"] == MEASURES_9

    # a's 9 responses and b's 27 sum to 126 (p's roll-up): a's could be anything in 1..5
    assert lone_range(inp, result, lone, RowKey.unit_row("a", RL_SCALE)) == (1.0, 5.0)
    assert_private([(inp, result)])


# --------------------------------------------------------------------------------------------
# (c) index vs items
# --------------------------------------------------------------------------------------------


def test_index_and_items_do_not_pin_a_person_who_answered_four_of_seven() -> None:
    """k = 5, one unit of 6: five people answer all 7 psychological-safety items (raw 2, 3, 4, 3,
    5), the sixth answers the first four (raw 1) and skips or says "don't know" to the rest.

    With means of respondent scores (method 1) the index row (6 people) and the three items
    only the five answered gave the five's scores, so the sixth's score was index·6 − their sum.
    Pooled, the index row is the sum of the item rows and adds nothing: every row is published
    (6 or 5 people) and the sixth's responses stay anywhere in 1..5.
    """
    rnd = Round()
    rnd.unit("u")
    for value in (2, 3, 4, 3, 5):
        rnd.person("u", same(PS, value))
    # PS order: mistakes (reversed), raise, reject (reversed), safe_risk, hard_to_ask (reversed),
    # no_undermining, skills
    answered, skipped = PS[:4], PS[4:]
    lone = rnd.person("u", {**same(answered, 1), skipped[0]: None, skipped[1]: None})
    inp = rnd.inputs(k=5)
    result = score(inp)

    ps = result.unit_scores.filter(pl.col("scale") == PS_SCALE)
    assert family_status(ps) == {PUBLISHED}
    assert result.diagnostics["rows_complementary"] == 0
    by_measure = {r["measure"]: r for r in ps.iter_rows(named=True)}
    # not reversed, answered by all six: (2 + 3 + 4 + 3 + 5 + 1) / 6 = 3.0
    assert (by_measure["ps_raise_problems"]["n"], by_measure["ps_raise_problems"]["mean"]) == (
        6,
        3.0,
    )
    # reversed (6 − v), all six: (4 + 3 + 2 + 3 + 1 + 5) / 6 = 3.0
    assert by_measure["ps_mistakes_held_against"]["mean"] == pytest.approx(3.0)
    # reversed, the five only: 13 / 5; not reversed, the five only: 17 / 5
    assert (by_measure["ps_hard_to_ask_help"]["n"], by_measure["ps_hard_to_ask_help"]["mean"]) == (
        5,
        pytest.approx(2.6),
    )
    assert by_measure["ps_skills_valued"]["mean"] == pytest.approx(3.4)
    # index: 4 items × 18 + 13 + 17 + 17 = 119 over 5·7 + 4 = 39 responses
    assert (by_measure["index"]["n"], by_measure["index"]["mean"]) == (6, pytest.approx(119 / 39))

    for measure in ["index", *answered]:
        key = RowKey.unit_row("u", PS_SCALE, measure)
        assert lone_range(inp, result, lone, key) == (1.0, 5.0), measure
    assert_private([(inp, result)])


# --------------------------------------------------------------------------------------------
# (d) roll-up vs column
# --------------------------------------------------------------------------------------------


def test_a_roll_up_does_not_isolate_a_column_rater() -> None:
    """P has children a and b; x is a root. x's 5 people (value 4) and b's 1 person (value 1)
    rate a. k = 3.

    a's incoming column is R[x,a] + R[b,a], P's roll-up incoming (raters outside P) is R[x,a]:
    their difference is b's person. The engine keeps the roll-up and the tie R[x,a] and hides
    a's incoming column (and b's outgoing row, which is R[b,a] again).
    """
    rnd = Round()
    rnd.unit("P")
    rnd.unit("a", "P")
    rnd.unit("b", "P")
    rnd.unit("x")
    rnd.people_in("x", 5, about={"a": same(RC, 4)})
    lone = rnd.person("b", about={"a": same(RC, 1)})
    inp = rnd.inputs()
    result = score(inp)

    assert status(tie_row(result, "b", "a")) == RULE_ONE
    assert status(unit_row(result, "a", RC_SCALE, "incoming")) == COMPLEMENTARY
    assert unit_row(result, "b", RC_SCALE, "outgoing")["suppressed"]
    rollup_in = unit_row(result, "P", RC_SCALE, "incoming", rollup=True)
    assert status(rollup_in) == PUBLISHED and (rollup_in["n"], rollup_in["mean"]) == (5, 4.0)
    xa = tie_row(result, "x", "a")
    assert status(xa) == PUBLISHED and (xa["n"], xa["mean"]) == (5, 4.0)
    # the organisation's relational capacity and between means pool x's and b's people: hidden
    assert result.summary["scales"][RC_SCALE]["mean"] is None
    assert result.summary["network"]["between_mean"] is None

    for measure in ["index", "communication", RC[0]]:
        key = RowKey.tie("b", "a", RC_SCALE, measure)
        assert lone_range(inp, result, lone, key) == (1.0, 5.0), measure
    assert_private([(inp, result)])


def test_a_roll_up_internal_row_does_not_isolate_a_sibling_rater() -> None:
    """As above, and a's own 3 people rate a (value 3): P's roll-up internal row is R[a,a] +
    R[b,a], so P's roll-up and R[a,a] cannot both be published. The engine keeps R[a,a] (a's
    internal row, 3 people, mean 3) and hides P's roll-up rows, a's incoming column and R[x,a]:
    what remains hidden is R[x,a] + R[b,a] (6 people, known only through the organisation mean)."""
    rnd = Round()
    rnd.unit("P")
    rnd.unit("a", "P")
    rnd.unit("b", "P")
    rnd.unit("x")
    rnd.people_in("x", 5, about={"a": same(RC, 4)})
    rnd.people_in("a", 3, about={"a": same(RC, 3)})
    lone = rnd.person("b", about={"a": same(RC, 1)})
    inp = rnd.inputs()
    result = score(inp)

    assert status(unit_row(result, "P", RC_SCALE, "internal", rollup=True)) == COMPLEMENTARY
    internal = unit_row(result, "a", RC_SCALE, "internal")
    assert status(internal) == PUBLISHED and (internal["n"], internal["mean"]) == (3, 3.0)
    assert status(tie_row(result, "a", "a")) == PUBLISHED
    assert status(tie_row(result, "x", "a")) == COMPLEMENTARY
    assert status(unit_row(result, "a", RC_SCALE, "incoming")) == COMPLEMENTARY
    assert lone_range(inp, result, lone, RowKey.tie("b", "a", RC_SCALE)) == (1.0, 5.0)
    assert_private([(inp, result)])


# --------------------------------------------------------------------------------------------
# (e) an incoming column with a 1-rater tie
# --------------------------------------------------------------------------------------------


def incoming_column_input() -> ScoringInput:
    rnd = Round()
    for unit in ("b", "x", "y", "z"):
        rnd.unit(unit)
    rnd.people_in("x", 3, about={"b": same(RC, 4)})
    rnd.people_in("y", 4, about={"b": same(RC, 3)})
    rnd.person("z", about={"b": same(RC, 1)})
    return rnd.inputs()


def incoming_column_round() -> tuple[ScoringInput, ScoringResult]:
    inp = incoming_column_input()
    return inp, score(inp)


def test_a_one_rater_tie_is_not_the_remainder_of_its_incoming_column() -> None:
    """b is rated by x (3 people, 4), y (4 people, 3) and z (1 person, 1). Incoming − R[x,b] −
    R[y,b] = R[z,b]: the engine hides the cheaper of the published ties, R[x,b] (3 people), so
    that only R[x,b] + R[z,b] is known (4 people)."""
    inp, result = incoming_column_round()
    lone = 1007
    assert status(tie_row(result, "z", "b")) == RULE_ONE
    assert status(tie_row(result, "x", "b")) == COMPLEMENTARY
    yb = tie_row(result, "y", "b")
    assert status(yb) == PUBLISHED and (yb["n"], yb["mean"], yb["sd"]) == (4, 3.0, 0.0)
    incoming = unit_row(result, "b", RC_SCALE, "incoming")
    # (3·4 + 4·3 + 1) / 8; it pools hidden base cells, so no sd
    assert status(incoming) == PUBLISHED
    assert (incoming["n"], incoming["mean"], incoming["sd"]) == (8, 25 / 8, None)
    # R[x,b] + R[z,b] = 9 · 13 = 117 over 36 responses: z's 9 could be 9..45
    assert lone_range(inp, result, lone, RowKey.tie("z", "b", RC_SCALE)) == (1.0, 5.0)
    assert_private([(inp, result)])


# --------------------------------------------------------------------------------------------
# (f) outgoing rows go first
# --------------------------------------------------------------------------------------------


def test_outgoing_rows_are_hidden_for_ties_below_k_and_incoming_rows_stay() -> None:
    """x's 3 people rate b (4); one of them also rates c (2), a 1-rater tie. y's 3 people rate
    b (3) and c (5); b's 3 people rate c (3).

    R[x,c] lies in c's incoming column and x's outgoing row. The incoming view is reported
    first: x's outgoing row (3 people) goes, complementary, before any repair; c's column then
    needs one more hidden tie (R[b,c], the first of two equally cheap ones), and b's outgoing row,
    which is R[b,c] again. Every incoming row stays.
    """
    rnd = Round()
    for unit in ("b", "c", "x", "y"):
        rnd.unit(unit)
    rnd.person("x", about={"b": same(RC, 4), "c": same(RC, 2)})
    rnd.people_in("x", 2, about={"b": same(RC, 4)})
    rnd.people_in("y", 3, about={"b": same(RC, 3), "c": same(RC, 5)})
    rnd.people_in("b", 3, about={"c": same(RC, 3)})
    inp = rnd.inputs()
    result = score(inp)

    assert people_of(inp, RowKey.unit_row("x", RC_SCALE, "index", "outgoing")) == 3
    outgoing_x = result.unit_scores.filter(
        pl.col("unit") == "x", pl.col("perspective") == "outgoing"
    )
    assert family_status(outgoing_x) == {COMPLEMENTARY}
    assert status(tie_row(result, "x", "c")) == RULE_ONE
    assert status(tie_row(result, "x", "b")) == PUBLISHED
    assert status(tie_row(result, "b", "c")) == COMPLEMENTARY
    assert status(unit_row(result, "b", RC_SCALE, "outgoing")) == COMPLEMENTARY
    assert status(unit_row(result, "y", RC_SCALE, "outgoing")) == PUBLISHED
    incoming = result.unit_scores.filter(pl.col("perspective") == "incoming")
    assert family_status(incoming) == {PUBLISHED}
    # b: (3·4 + 3·3) / 6 = 3.5; c: (2 + 3·5 + 3·3) / 7
    assert unit_row(result, "b", RC_SCALE, "incoming")["mean"] == pytest.approx(3.5)
    assert unit_row(result, "c", RC_SCALE, "incoming")["mean"] == pytest.approx(26 / 7)
    assert_private([(inp, result)])


# --------------------------------------------------------------------------------------------
# (g) the slack rules of the atom safety test
# --------------------------------------------------------------------------------------------


def slack_round(hidden_values: tuple[int, int, int]) -> ScoringInput:
    """t is rated by x (1 person), y (2 people), v (3 people, 4) and w (3 people, 3).
    R[x,t] and R[y,t] are below k: their 3 people (``hidden_values``) form the remainder
    incoming(t) − R[v,t] − R[w,t], a group of exactly k = 3."""
    rnd = Round()
    for unit in ("t", "v", "w", "x", "y"):
        rnd.unit(unit)
    rnd.person("x", about={"t": same(RC, hidden_values[0])})
    for value in hidden_values[1:]:
        rnd.person("y", about={"t": same(RC, value)})
    rnd.people_in("v", 3, about={"t": same(RC, 4)})
    rnd.people_in("w", 3, about={"t": same(RC, 3)})
    return rnd.inputs()


LONE_X = 1000


def test_an_ordinary_remainder_of_k_people_is_safe() -> None:
    """Values 4, 4, 3: the remainder 9·11 = 99 over 27 responses leaves x anywhere in 1..5, so
    the parts v and w are published next to the column."""
    inp = slack_round((4, 4, 3))
    result = score(inp)
    assert status(tie_row(result, "v", "t")) == PUBLISHED
    assert status(tie_row(result, "w", "t")) == PUBLISHED
    incoming = unit_row(result, "t", RC_SCALE, "incoming")
    # (4 + 4 + 3 + 3·4 + 3·3) / 9 = 32 / 9
    assert (incoming["n"], incoming["mean"]) == (9, pytest.approx(32 / 9))
    assert lone_range(inp, result, LONE_X, RowKey.tie("x", "t", RC_SCALE)) == (1.0, 5.0)
    assert_private([(inp, result)])


@pytest.mark.parametrize(("value", "reader_range"), [(5, (2.0, 5.0)), (1, (1.0, 5.0))])
def test_a_unanimous_remainder_of_k_people_is_not_published(
    value: int, reader_range: tuple[float, float]
) -> None:
    """All three hidden people answer the top (or bottom) value: incoming(t) − R[v,t] − R[w,t]
    would be 3 people at 5 (or 1), each pinned exactly — the atom has k people but no room
    above (below) its total. The engine hides one more tie (R[v,t], the first of two equally
    cheap ones); x's person is then one of 6 people whose total is known."""
    inp = slack_round((value, value, value))
    result = score(inp)
    assert status(tie_row(result, "v", "t")) == COMPLEMENTARY
    assert status(tie_row(result, "w", "t")) == PUBLISHED
    assert status(unit_row(result, "t", RC_SCALE, "incoming")) == PUBLISHED
    # x + y + v: top 9·(3·5 + 3·4) = 243 over 54 responses; the other 45 are at most 5, so
    # x's 9 are at least 243 − 225 = 18 (mean 2). Bottom 9·(3·1 + 3·4) = 135: the other 45
    # at least 1 leaves x up to 90 (capped at 45), at most 5 down to −90 (capped at 9).
    assert lone_range(inp, result, LONE_X, RowKey.tie("x", "t", RC_SCALE)) == reader_range
    assert_private([(inp, result)])


# --------------------------------------------------------------------------------------------
# (h) the audit fails loudly
# --------------------------------------------------------------------------------------------


def capture_protection(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Record the arguments and the result of the engine's next ``protect`` call."""
    seen: dict[str, Any] = {}
    real = engine_scoring.protect

    def protect(**kwargs: Any) -> Any:
        seen.update(kwargs)
        seen["result"] = real(**kwargs)
        return seen["result"]

    monkeypatch.setattr(engine_scoring, "protect", protect)
    return seen


def rule_one_only(protection: Any, rows: Any, k: int) -> Any:
    published = rows.n[rows.canonical] >= k
    return dataclasses.replace(
        protection,
        published=published,
        reason=np.where(published, 0, 1).astype(np.int64),
        pools_hidden=np.ones(len(published), dtype=bool),
    )


def test_the_engine_refuses_to_publish_rule_one_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Case (e) with the protection replaced by rule 1: the engine's own audit, which reads the
    result back as a reader sees it, raises instead of returning the publication."""
    real = engine_scoring.protect

    def protect(**kwargs: Any) -> Any:
        return rule_one_only(real(**kwargs), kwargs["rows"], kwargs["k"])

    monkeypatch.setattr(engine_scoring, "protect", protect)
    inp = incoming_column_input()
    with pytest.raises(UnsafePublication, match="unsafe atom"):
        score(inp)


def test_the_protection_raises_when_the_repair_finds_nothing_to_hide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_protection, "rows_to_hide", lambda **_: np.zeros(0, dtype=np.int64))
    inp = incoming_column_input()
    with pytest.raises(UnsafePublication, match="no row to hide"):
        score(inp)


def test_protection_audit_accepts_the_repair_and_rejects_a_known_leak(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = capture_protection(monkeypatch)
    inp = incoming_column_input()
    score(inp)
    structure = {name: seen[name] for name in ("cells", "incidence", "own_row", "k", "earlier")}
    rows = seen["rows"]
    found = engine_protection.audit(published=seen["result"].published, **structure)
    assert found.safe.all()
    # rule 1 alone publishes incoming(b), R[x,b] and R[y,b]: R[z,b] is their difference
    with pytest.raises(UnsafePublication):
        engine_protection.audit(published=rows.n[rows.canonical] >= 3, **structure)


def test_a_suppression_pattern_that_is_safe_for_some_values_is_refused_for_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Case (g): the pattern chosen for the ordinary values (R[v,t] and R[w,t] published),
    applied to the unanimous values, pins x's person — the LP auditor finds it, and the engine's
    audit refuses it."""
    seen = capture_protection(monkeypatch)
    score(slack_round((4, 4, 3)))
    ordinary = seen["result"]
    unanimous = slack_round((5, 5, 5))

    monkeypatch.setattr(engine_scoring, "protect", lambda **_: ordinary)
    with pytest.raises(UnsafePublication):
        score(unanimous)

    monkeypatch.setattr(engine_scoring, "audit", lambda **_: None)
    leaked = score(unanimous)
    assert status(tie_row(leaked, "v", "t")) == PUBLISHED
    found = audit([(unanimous, leaked)])
    pinned = [v for v in found.violations_for([LONE_X]) if v.cell == RowKey.tie("x", "t", RC_SCALE)]
    assert pinned and pinned[0].low == pytest.approx(5.0) and pinned[0].width < 1e-6


# --------------------------------------------------------------------------------------------
# (i) determinism
# --------------------------------------------------------------------------------------------


def permuted(inp: ScoringInput, seed: int) -> ScoringInput:
    """The same round: every frame in another row order, respondents under other ids and units
    under other round-local numbers (external ids kept)."""
    rng = random.Random(seed)
    old = inp.respondents["respondent"].to_list()
    people = dict(zip(old, rng.sample(range(1, 10**9), len(old)), strict=True))
    n_units = inp.units.height
    units = dict(zip(range(n_units), rng.sample(range(n_units), n_units), strict=True))

    def renumber(column: str, mapping: dict[int, int], dtype: Any) -> pl.Expr:
        return pl.col(column).replace_strict(mapping, default=None, return_dtype=dtype)

    def shuffled(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.sample(fraction=1.0, shuffle=True, seed=rng.randrange(2**32))

    return dataclasses.replace(
        inp,
        units=shuffled(
            inp.units.with_columns(
                renumber("unit", units, pl.Int32), renumber("parent", units, pl.Int32)
            )
        ),
        respondents=shuffled(
            inp.respondents.with_columns(
                renumber("respondent", people, pl.Int64), renumber("unit", units, pl.Int32)
            )
        ),
        answers=shuffled(
            inp.answers.with_columns(
                renumber("respondent", people, pl.Int64), renumber("target", units, pl.Int32)
            )
        ),
    )


def determinism_round() -> ScoringInput:
    """Choices between equally cheap suppressions in a column and in a hierarchy: z and y both
    rate b with 3 people next to c's one rater; p's children a (3) and c (3) next to b (1)."""
    rnd = Round()
    rnd.unit("p")
    for unit in ("a", "b", "c"):
        rnd.unit(unit, "p")
    rnd.unit("y")
    rnd.unit("z")
    rnd.people_in("z", 3, same(RL, 4), about={"b": same(RC, 4)})
    rnd.people_in("y", 3, same(RL, 3), about={"b": same(RC, 2)})
    rnd.person("c", same(RL, 5), about={"b": same(RC, 5), "c": same(RC, 4)})
    rnd.people_in("a", 3, same(RL, 2), about={"a": same(RC, 3)})
    rnd.people_in("c", 3, same(RL, 4), about={"c": same(RC, 3)})
    rnd.person("b", same(RL, 1))
    return rnd.inputs()


def assert_same(first: ScoringResult, second: ScoringResult) -> None:
    assert first.unit_scores.equals(second.unit_scores)
    assert first.tie_scores.equals(second.tie_scores)
    assert first.participation.equals(second.participation)
    assert first.summary == second.summary
    assert first.diagnostics == second.diagnostics


@pytest.mark.parametrize(
    "make",
    [
        determinism_round,
        lambda: to_scoring_input(
            generate_organisation(80, 10, seed=5, tiny_unit_share=0.4, targets_per_respondent=4),
            ScoringSettings(min_group_size=3),
        ),
    ],
    ids=["handcrafted", "synthetic"],
)
def test_row_order_and_ids_do_not_change_the_publication(make: Any) -> None:
    inp = make()
    first = score(inp)
    assert first.diagnostics["rows_complementary"] > 0
    for seed in range(5):
        assert_same(first, score(permuted(inp, seed)))


# --------------------------------------------------------------------------------------------
# (j) second moments
# --------------------------------------------------------------------------------------------


def test_second_moments_only_on_rows_of_published_base_cells() -> None:
    """p's children a (values 3, 4, 5), b (1) and c (2, 3, 4); relational leadership. Rule 1
    hides b; p's roll-up − c − a would be b, so a goes too (the first of two equally cheap
    siblings). c pools only its own (published) base cells and shows its second moments;
    p's roll-up pools the hidden ones of a and b and shows its mean only."""
    rnd = Round()
    rnd.unit("p")
    for unit in ("a", "b", "c"):
        rnd.unit(unit, "p")
    for value in (3, 4, 5):
        rnd.person("a", same(RL, value))
    rnd.person("b", same(RL, 1))
    for value in (2, 3, 4):
        rnd.person("c", same(RL, value))
    inp = rnd.inputs()
    result = score(inp)

    assert status(unit_row(result, "b")) == RULE_ONE
    assert status(unit_row(result, "a")) == COMPLEMENTARY

    c = unit_row(result, "c")
    # mean 3, sd 1, interval 3 ± t(0.975, 2)·1/√3; every item has variance 1 = σ²_EU / 2, so
    # rwg(J) = 9·0.5 / (9·0.5 + 0.5) = 0.9 for the index, 3·0.5 / (1.5 + 0.5) = 0.75 for a
    # subscale of 3 items and 1 − 1/2 = 0.5 (low agreement) for one item
    half = T_975_2 / np.sqrt(3)
    assert (c["n"], c["mean"], c["sd"]) == (3, 3.0, pytest.approx(1.0))
    assert (c["ci_low"], c["ci_high"]) == (pytest.approx(3 - half), pytest.approx(3 + half))
    assert (c["rwg"], c["low_agreement"]) == (pytest.approx(0.9), False)
    framing = unit_row(result, "c", measure="framing")
    assert framing["rwg"] == pytest.approx(0.75)
    item = unit_row(result, "c", measure=RL[0])
    assert (item["rwg"], item["low_agreement"]) == (pytest.approx(0.5), True)

    rollup = result.unit_scores.filter(
        pl.col("unit") == "p", pl.col("rollup"), pl.col("scale") == RL_SCALE
    )
    assert family_status(rollup) == {PUBLISHED}
    # (3 + 4 + 5 + 1 + 2 + 3 + 4) / 7 = 22 / 7
    assert rollup["mean"].to_list() == [pytest.approx(22 / 7)] * MEASURES_9
    assert rollup["n"].to_list() == [7] * MEASURES_9
    for column in ("sd", "ci_low", "ci_high", "rwg", "low_agreement"):
        assert rollup[column].null_count() == MEASURES_9, column
    assert_private([(inp, result)])
