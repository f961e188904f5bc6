"""The attacker's-LP auditor finds the differencing attacks of SCORING.md §5 — and only those.

Every publication here is built by hand (no engine): the published frames hold exactly the rows
each case names, with means computed from the responses the documents say a row pools.
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any

import polars as pl
import pytest

from coherence_core.instruments import InstrumentDefinition
from coherence_scoring.engine.types import (
    ANSWERS_SCHEMA,
    RESPONDENTS_SCHEMA,
    TIE_SCORES_SCHEMA,
    UNIT_PARTICIPATION_SCHEMA,
    UNIT_SCORES_SCHEMA,
    UNITS_SCHEMA,
    ScoringInput,
    ScoringResult,
    ScoringSettings,
)
from tests.privacy.lp_audit import (
    Attack,
    PublicationModel,
    RowKey,
    assert_private,
    audit,
    row_responses,
)

RC = "relational_capacity"
PS = "psychological_safety"
PS_ITEMS = [f"ps{i}" for i in range(1, 8)]


def _text(key: str) -> dict[str, str]:
    return {"en": f"Statement {key}."}


def tiny_instrument() -> InstrumentDefinition:
    """Relational capacity with two items (one reversed) asked per target unit, and a 7-item
    psychological safety scale (min 4 answered, three reversed items, one recoded)."""
    return InstrumentDefinition.model_validate(
        {
            "key": "lp-audit-tiny",
            "name": {"en": "LP audit tiny"},
            "scales": [
                {
                    "key": RC,
                    "targeting": "unit",
                    "items": [
                        {"key": "rc_a", "text": _text("rc_a")},
                        {"key": "rc_b", "reversed": True, "text": _text("rc_b")},
                    ],
                },
                {
                    "key": PS,
                    "targeting": "self",
                    "items": [
                        {"key": "ps1", "reversed": True, "text": _text("ps1")},
                        {"key": "ps2", "text": _text("ps2")},
                        {"key": "ps3", "reversed": True, "text": _text("ps3")},
                        {"key": "ps4", "text": _text("ps4")},
                        {"key": "ps5", "reversed": True, "text": _text("ps5")},
                        {
                            "key": "ps6",
                            "recode": {1: 1, 2: 2, 3: 4, 4: 5, 5: 5},
                            "text": _text("ps6"),
                        },
                        {"key": "ps7", "text": _text("ps7")},
                    ],
                },
            ],
        }
    )


INSTRUMENT = tiny_instrument()


class Org:
    """A hand-built round: units (external id -> parent), people and their raw answers."""

    def __init__(self, units: dict[str, str | None], k: int) -> None:
        self.units = units
        self.index = {ext: i for i, ext in enumerate(units)}
        self.k = k
        self.people: list[tuple[int, str]] = []
        self.answers: list[dict[str, Any]] = []

    def person(
        self,
        home: str,
        *,
        ps: dict[str, int | None] | None = None,
        rates: dict[str, tuple[int | None, int | None]] | None = None,
        respondent: int | None = None,
    ) -> int:
        rid = respondent if respondent is not None else 100 + len(self.people)
        self.people.append((rid, home))
        items = INSTRUMENT.item_index
        for key, value in (ps or {}).items():
            self.answers.append(
                {"respondent": rid, "target": None, "item": items[key], "value": value}
            )
        for target, (a, b) in (rates or {}).items():
            for key, value in (("rc_a", a), ("rc_b", b)):
                self.answers.append(
                    {
                        "respondent": rid,
                        "target": self.index[target],
                        "item": items[key],
                        "value": value,
                    }
                )
        return rid

    def input(self) -> ScoringInput:
        units = pl.DataFrame(
            [
                {
                    "unit": self.index[ext],
                    "external_id": ext,
                    "parent": None if parent is None else self.index[parent],
                    "headcount": None,
                }
                for ext, parent in self.units.items()
            ],
            schema=UNITS_SCHEMA,
        )
        respondents = pl.DataFrame(
            [{"respondent": rid, "unit": self.index[home]} for rid, home in self.people],
            schema=RESPONDENTS_SCHEMA,
        )
        answers = pl.DataFrame(self.answers, schema=ANSWERS_SCHEMA)
        return ScoringInput(
            instrument=INSTRUMENT,
            units=units,
            respondents=respondents,
            answers=answers,
            settings=ScoringSettings(min_group_size=self.k),
        )


def publish(inp: ScoringInput, keys: list[RowKey], hidden: list[RowKey] = ()) -> ScoringResult:
    """A publication holding exactly ``keys`` (exact pooled means) plus suppressed ``hidden``."""
    unit_rows: list[dict[str, Any]] = []
    tie_rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {"scales": {}, "network": {}}
    model = PublicationModel(inp)
    for key, shown in [(k, True) for k in keys] + [(k, False) for k in hidden]:
        responses = row_responses(model, key)
        assert responses, f"{key} pools no response"
        mean = float(Fraction(sum(r.value for r in responses), len(responses)))
        n = len({r.respondent for r in responses})
        values = {
            "n": n if shown else None,
            "mean": mean if shown else None,
            "suppressed": not shown,
            "suppression_reason": None if shown else "complementary",
        }
        if key.kind == "unit":
            unit_rows.append(
                {
                    "unit": key.unit,
                    "scale": key.scale,
                    "measure": key.measure,
                    "perspective": key.perspective,
                    "rollup": key.rollup,
                    **values,
                }
            )
        elif key.kind == "tie":
            tie_rows.append(
                {
                    "from_unit": key.from_unit,
                    "to_unit": key.to_unit,
                    "scale": key.scale,
                    "measure": key.measure,
                    **values,
                }
            )
        elif key.kind == "scale_mean":
            summary["scales"][key.scale] = {"mean": values["mean"]}
        else:
            summary["network"][f"{key.perspective}_mean"] = values["mean"]
    return ScoringResult(
        unit_scores=pl.DataFrame(unit_rows, schema=UNIT_SCORES_SCHEMA),
        tie_scores=pl.DataFrame(tie_rows, schema=TIE_SCORES_SCHEMA),
        participation=pl.DataFrame([], schema=UNIT_PARTICIPATION_SCHEMA),
        summary=summary,
    )


def ps_answers(values: list[int | None]) -> dict[str, int | None]:
    return dict(zip(PS_ITEMS, values, strict=True))


def members(unit: str, measure: str = "index", rollup: bool = False) -> RowKey:
    return RowKey.unit_row(unit, PS, measure, "members", rollup)


def rc_unit(unit: str, perspective: str, rollup: bool = False) -> RowKey:
    return RowKey.unit_row(unit, RC, "index", perspective, rollup)


def tie(a: str, b: str, measure: str = "index") -> RowKey:
    return RowKey.tie(a, b, RC, measure)


# --------------------------------------------------------------------------------------------
# The documents' pooling, as the auditor reads it
# --------------------------------------------------------------------------------------------


def test_row_responses_follow_recoding_reversal_and_eligibility() -> None:
    org = Org({"u": None, "v": None}, k=3)
    full = org.person("u", ps=ps_answers([1, 2, 3, 4, 5, 3, None]))
    org.person("u", ps=ps_answers([1, 2, 3, None, None, None, None]))  # 3 of 7: not eligible
    rater = org.person("v", rates={"u": (2, None)})  # 1 of 2 answered: eligible for RC
    org.person("v", rates={"u": (None, None)})  # only "don't know": no response
    inp = org.input()

    index = row_responses(inp, members("u"))
    assert {r.respondent for r in index} == {full}
    # ps1 reversed 1 -> 5, ps3 reversed 3 -> 3, ps5 reversed 5 -> 1, ps6 recoded 3 -> 4.
    assert [r.value for r in index] == [5, 2, 3, 4, 1, 4]
    assert [r.value for r in row_responses(inp, members("u", "ps6"))] == [4]
    incoming = row_responses(inp, rc_unit("u", "incoming"))
    assert [(r.respondent, r.item, r.value) for r in incoming] == [(rater, "rc_a", 2)]
    assert row_responses(inp, rc_unit("v", "outgoing")) == incoming
    assert row_responses(inp, tie("v", "u")) == incoming
    assert row_responses(inp, rc_unit("u", "internal")) == []
    # Frame rows work as keys too.
    assert row_responses(inp, {"from_unit": "v", "to_unit": "u", "scale": RC, "measure": "rc_a"})


# --------------------------------------------------------------------------------------------
# The six cases of the brief
# --------------------------------------------------------------------------------------------


def index_vs_items_round() -> tuple[ScoringInput, int]:
    """A unit of 6 (k=5): five people answer ps2..ps7, the sixth only ps1..ps4 (4 of 7,
    eligible). ps1's row holds that one person and is hidden by rule 1."""
    org = Org({"u": None}, k=5)
    patterns = [
        [2, 4, 3, 3, 2, 4],
        [3, 3, 2, 4, 3, 3],
        [2, 4, 4, 3, 2, 4],
        [3, 3, 3, 4, 3, 3],
        [2, 3, 3, 3, 4, 3],
    ]
    for values in patterns:
        org.person("u", ps=ps_answers([None, *values]))
    sixth = org.person("u", ps=ps_answers([3, 3, 2, 4, None, None, None]))
    return org.input(), sixth


def test_index_vs_items_isolates_the_person_who_answered_other_items() -> None:
    inp, sixth = index_vs_items_round()
    published = [members("u")] + [members("u", item) for item in PS_ITEMS[1:]]
    result = audit([(inp, publish(inp, published, hidden=[members("u", "ps1")]))])

    assert not result.inconsistencies
    leaks = result.violations_for([sixth])
    assert any(v.cell == members("u", "ps1") and v.width < 1e-6 for v in leaks), result.report()
    pinned = next(v for v in leaks if v.cell == members("u", "ps1"))
    assert (0, members("u")) in pinned.rows  # the index row is what pins it
    with pytest.raises(AssertionError, match="ps1"):
        assert_private([(inp, publish(inp, published))])


def test_index_vs_items_without_the_index_is_private() -> None:
    inp, _ = index_vs_items_round()
    published = [members("u", item) for item in PS_ITEMS[1:]]
    result = assert_private([(inp, publish(inp, published))])
    assert result.objectives_checked > 0 and result.lps_solved + result.closed_form > 0


def column_round() -> tuple[ScoringInput, int]:
    """b is rated by a1 (5 people), a2 (5 people) and c (1 person); k=5; non-extreme answers."""
    org = Org({"b": None, "a1": None, "a2": None, "c": None}, k=5)
    for a, rb in [(3, 3), (4, 2), (3, 2), (4, 3), (2, 3)]:
        org.person("a1", rates={"b": (a, rb)})
    for a, rb in [(3, 3), (3, 2), (4, 3), (3, 3), (2, 2)]:
        org.person("a2", rates={"b": (a, rb)})
    lone = org.person("c", rates={"b": (3, 3)})
    return org.input(), lone


def test_column_leak_incoming_minus_published_ties_isolates_the_lone_rater() -> None:
    inp, lone = column_round()
    pub = publish(
        inp,
        [rc_unit("b", "incoming"), tie("a1", "b"), tie("a2", "b")],
        hidden=[tie("c", "b")],
    )
    result = audit([(inp, pub)])
    assert not result.inconsistencies
    leaks = result.violations_for([lone])
    assert any(v.cell == tie("c", "b") and v.width < 1e-6 for v in leaks), result.report()
    with pytest.raises(AssertionError, match=r"tie\[c->b"):
        assert_private([(inp, pub)])


def test_column_with_a_second_hidden_tie_keeps_the_lone_rater_private() -> None:
    inp, lone = column_round()
    pub = publish(
        inp,
        [rc_unit("b", "incoming"), tie("a1", "b")],
        hidden=[tie("a2", "b"), tie("c", "b")],
    )
    result = audit([(inp, pub)])
    assert result.violations_for([lone]) == []
    assert result.ok, result.report()
    assert result.groups_checked > 11  # singletons, {c}, and pairs of them


def test_two_exact_versions_isolate_the_added_person() -> None:
    first = Org({"u": None}, k=5)
    patterns = [
        [2, 4, 3, 3, 2, 4, 3],
        [3, 3, 2, 4, 3, 3, 4],
        [2, 4, 4, 3, 2, 4, 3],
        [3, 3, 3, 4, 3, 3, 2],
        [2, 3, 3, 3, 4, 3, 3],
    ]
    for rid, values in enumerate(patterns, start=1):
        first.person("u", ps=ps_answers(values), respondent=rid)
    second = Org({"u": None}, k=5)
    for rid, values in enumerate(patterns, start=1):
        second.person("u", ps=ps_answers(values), respondent=rid)
    added = second.person("u", ps=ps_answers([3, 3, 3, 3, 3, 3, 3]), respondent=6)

    v1, v2 = first.input(), second.input()
    pubs = [(v1, publish(v1, [members("u")])), (v2, publish(v2, [members("u")]))]
    # Each version alone is private; the two together are not.
    assert_private(pubs[:1])
    assert_private(pubs[1:])
    result = audit(pubs)
    assert not result.inconsistencies
    leaks = result.violations_for([added])
    assert any(v.publication == 1 and v.cell == members("u") for v in leaks), result.report()
    assert all(v.group == (added,) for v in result.violations)  # the five share their variables


def test_a_changed_answer_between_versions_is_a_violation() -> None:
    """Same five people twice, one answer moved by one point: the change of that person's mean
    is pinned exactly (the 'change of answer' of §5), though each mean alone is not."""
    patterns = [
        [2, 4, 3, 3, 2, 4, 3],
        [3, 3, 2, 4, 3, 3, 4],
        [2, 4, 4, 3, 2, 4, 3],
        [3, 3, 3, 4, 3, 3, 2],
        [2, 3, 3, 3, 4, 3, 3],
    ]
    versions = []
    for changed in (False, True):
        org = Org({"u": None}, k=5)
        for rid, values in enumerate(patterns, start=1):
            if changed and rid == 3:
                values = [3, *values[1:]]
            org.person("u", ps=ps_answers(values), respondent=rid)
        inp = org.input()
        versions.append((inp, publish(inp, [members("u")])))
    result = audit(versions)
    leaks = result.violations_for([3])
    assert {v.cell for v in leaks} >= {members("u"), members("u", "ps1")}, result.report()
    assert all(v.kind == "change" and v.width < 1e-6 for v in result.violations)
    assert {v.group for v in result.violations} == {(3,)}
    assert audit(versions, check_changes=False).ok


def test_unanimous_row_pins_people_only_as_far_as_the_row_itself() -> None:
    org = Org({"u": None}, k=5)
    # ps1, ps3, ps5 are reversed: raw 1 scores 5. ps6 is recoded: raw 4 scores 5.
    for _ in range(5):
        org.person("u", ps=ps_answers([1, 5, 1, 5, 1, 4, 5]))
    inp = org.input()
    pub = publish(inp, [members("u")] + [members("u", item) for item in PS_ITEMS])
    result = assert_private([(inp, pub)])
    assert result.exempted > 0  # single people are pinned (width 0), as the row alone pins them


def test_identical_versions_share_variables() -> None:
    inp, _ = column_round()
    pub = publish(inp, [rc_unit("b", "incoming"), tie("a1", "b")])
    assert_private([(inp, pub), (inp, pub)])


def test_rollup_incoming_minus_unit_incoming_isolates_the_sibling_rater() -> None:
    """P has children a and b; x is a root. x's 5 people and b's 1 person rate a (k=3).
    incoming(a) pools x and b; P's roll-up incoming pools only x (b is inside P)."""
    org = Org({"x": None, "P": None, "a": "P", "b": "P"}, k=3)
    for a, rb in [(3, 3), (4, 2), (3, 2), (4, 3), (2, 3)]:
        org.person("x", rates={"a": (a, rb)})
    sibling = org.person("b", rates={"a": (3, 4)})
    inp = org.input()
    pub = publish(
        inp,
        [rc_unit("a", "incoming"), rc_unit("P", "incoming", rollup=True)],
        hidden=[tie("x", "a"), tie("b", "a")],
    )
    result = audit([(inp, pub)])
    assert not result.inconsistencies
    leaks = result.violations_for([sibling])
    assert any(v.cell == tie("b", "a") and v.width < 1e-6 for v in leaks), result.report()
    pinned = next(v for v in leaks if v.cell == tie("b", "a"))
    assert {key for _, key in pinned.rows} == {
        rc_unit("a", "incoming"),
        rc_unit("P", "incoming", rollup=True),
    }
    # Without the roll-up row nothing isolates b's person.
    assert_private([(inp, publish(inp, [rc_unit("a", "incoming")]))])


# --------------------------------------------------------------------------------------------
# The auditor's own checks on what it is given
# --------------------------------------------------------------------------------------------


def test_a_mean_that_the_documents_do_not_explain_is_reported() -> None:
    inp, _ = column_round()
    pub = publish(inp, [rc_unit("b", "incoming"), tie("a1", "b")])
    wrong = pub.unit_scores.with_columns(pl.col("mean") + 0.25)
    bad = ScoringResult(wrong, pub.tie_scores, pub.participation, pub.summary)
    result = audit([(inp, bad)])
    assert any("incoming" in issue for issue in result.inconsistencies)
    with pytest.raises(AssertionError, match="inconsistenc"):
        assert_private([(inp, bad)])
    impossible = ScoringResult(
        pub.unit_scores.with_columns(pl.lit(5.5).alias("mean")),
        pub.tie_scores,
        pub.participation,
        pub.summary,
    )
    result = audit([(inp, impossible)])
    assert any("no answers within the response range" in i for i in result.inconsistencies)


def test_summary_means_are_equalities_too() -> None:
    """The organisation mean and the network between-mean each pool the column of b here, so
    publishing them with the two big ties isolates c's person exactly like the incoming row."""
    inp, lone = column_round()
    for total in (RowKey.scale_mean(RC), RowKey.network("between")):
        pub = publish(inp, [total, tie("a1", "b"), tie("a2", "b")])
        assert audit([(inp, pub)]).violations_for([lone]), total


def test_second_moments_need_every_base_cell_published() -> None:
    inp, _ = column_round()
    pub = publish(inp, [tie("a1", "b")])
    with_sd = ScoringResult(
        pub.unit_scores,
        pub.tie_scores.with_columns(pl.lit(0.5).alias("sd")),
        pub.participation,
        pub.summary,
    )
    assert audit([(inp, with_sd)]).second_moment_findings
    items = publish(inp, [tie("a1", "b"), tie("a1", "b", "rc_a"), tie("a1", "b", "rc_b")])
    items = ScoringResult(
        items.unit_scores,
        items.tie_scores.with_columns(pl.lit(0.5).alias("sd")),
        items.participation,
        items.summary,
    )
    assert_private([(inp, items)])


def test_a_small_organisation_audits_quickly() -> None:
    """8 units (a small tree), 40 people, rule 1 only on every row: the auditor must finish
    quickly and, as rule 1 alone is not enough, find the column and roll-up leaks."""
    units = {"root": None, "s1": "root", "s2": "root", "a": "s1", "b": "s1", "c": "s2", "d": "s2"}
    units["e"] = None
    org = Org(units, k=5)
    sizes = {"root": 2, "s1": 4, "s2": 5, "a": 7, "b": 6, "c": 1, "d": 8, "e": 7}
    names = list(units)
    rid = 0
    for unit, size in sizes.items():
        for j in range(size):
            rid += 1
            home = names.index(unit)
            targets = {names[(home + step) % len(names)] for step in (0, 1, 3)}
            rates = {t: (2 + (rid + j + len(t)) % 3, 2 + (rid * 3 + j) % 3) for t in targets}
            values = [2 + (rid + i) % 3 for i in range(7)]
            if rid % 6 == 0:
                values[rid % 7] = None
            person = org.person(unit, ps=ps_answers(values), rates=rates)
            if unit == "c":
                alone = person
    inp = org.input()
    model = PublicationModel(inp)
    keys = [key for key in model.rows if len(model.people(key)) >= 5]
    pub = publish(inp, keys)
    started = time.perf_counter()
    result = audit([(inp, pub)])
    elapsed = time.perf_counter() - started
    assert not result.inconsistencies
    # c's one member: the roll-up of s2 minus the rows of s2 and d.
    assert any(v.cell == members("c") for v in result.violations_for([alone])), result.report()
    assert elapsed < 20, (elapsed, result.report(limit=3))


@pytest.mark.parametrize("case", ["index-vs-items", "rollup"])
def test_the_aggregated_lp_equals_the_plain_lp(case: str) -> None:
    """Atoms (variables with equal constraint columns) are an exact reduction: every single
    person's range in every cell is the same as with one LP variable per response."""
    if case == "index-vs-items":
        inp, _ = index_vs_items_round()
        keys = [members("u")] + [members("u", item) for item in PS_ITEMS[1:]]
    else:
        org = Org({"x": None, "P": None, "a": "P", "b": "P"}, k=3)
        for a, rb in [(3, 3), (4, 2), (3, 2), (4, 3), (2, 3)]:
            org.person("x", rates={"a": (a, rb), "x": (4, 4)})
        org.person("b", rates={"a": (3, 4), "b": (2, 2)})
        org.person("a", rates={"a": (5, 1), "x": (3, 3)})
        inp = org.input()
        keys = [rc_unit("a", "incoming"), rc_unit("P", "incoming", rollup=True), tie("x", "x")]
    attack = Attack([(inp, publish(inp, keys))])
    model = attack.models[0]
    compared = 0
    for key in model.rows:
        if case == "rollup" and key.measure != "index":
            continue  # item rows of this case repeat the index rows' structure
        for person in sorted(model.people(key)):
            fast = attack.mean_range([person], key)
            plain = attack.mean_range([person], key, plain=True)
            assert fast == pytest.approx(plain, abs=1e-7), (key, person)
            compared += 1
    assert compared > 20


def test_a_perturbed_preview_adds_no_equalities() -> None:
    """A publication flagged ``preview`` does not publish exact sums: the auditor does not
    difference it (its noise is outside this LP) and says so."""
    first = Org({"u": None}, k=5)
    for rid in range(1, 6):
        first.person("u", ps=ps_answers([3, 3, 2, 4, 3, 3, 4]), respondent=rid)
    second = Org({"u": None}, k=5)
    for rid in range(1, 6):
        second.person("u", ps=ps_answers([3, 3, 2, 4, 3, 3, 4]), respondent=rid)
    second.person("u", ps=ps_answers([3, 3, 3, 3, 3, 3, 3]), respondent=6)
    v1, v2 = first.input(), second.input()
    exact = publish(v1, [members("u")])
    noisy = publish(v1, [members("u")])
    preview = {  # any mapping or object with these parts is a publication
        "unit_scores": noisy.unit_scores.with_columns(pl.col("mean") + 0.137),
        "tie_scores": noisy.tie_scores,
        "summary": noisy.summary,
        "preview": True,
    }
    result = assert_private([(v1, preview), (v2, publish(v2, [members("u")]))])
    assert result.previews_skipped == [0]
    assert not audit([(v1, exact), (v2, publish(v2, [members("u")]))]).ok
