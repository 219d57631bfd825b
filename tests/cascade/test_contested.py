"""Which headlines the cascade escalates, in which order, and which labels win: plain functions,
no services."""

from __future__ import annotations

import pytest

from cascade.contested import Band, rank_contested, within_budget
from cascade.labels import escalated_labels, resolve_labels
from cascade.people import disagreement, for_people

TEXT = "Mizuho Maintains Buy on Autodesk, Raises Price Target"


def ent(start: int, end: int, score: float = 0.9) -> dict:
    return {"start": start, "end": end, "label": "Company", "text": TEXT[start:end],
            "score": score}


def row(hid: str, *ents: dict) -> dict:
    return {"id": hid, "text": TEXT, "date": "2015-01-02", "stock_symbol": "ADSK",
            "entities": list(ents)}


MIZUHO, AUTODESK, MAINT = ent(0, 6), ent(24, 32), ent(7, 16)


def test_disagreements_rank_by_how_much_the_teachers_disagree_and_agreement_is_never_escalated():
    t1 = [row("agree", MIZUHO, AUTODESK), row("half", MIZUHO, AUTODESK), row("none", MIZUHO),
          row("only-one", MIZUHO)]
    t2 = [row("agree", MIZUHO, AUTODESK), row("half", MIZUHO), row("none", AUTODESK)]
    ranked = rank_contested([t1, t2])
    # "only-one" was dead-lettered by teacher 2: no vote, not contested
    assert [c.row["id"] for c in ranked] == ["none", "half"]
    assert ranked[0].uncertainty == pytest.approx(2.0) and ranked[1].uncertainty == pytest.approx(1.5)
    assert {c.reason for c in ranked} == {"disagree"}
    assert ranked[1].teachers == [[MIZUHO, AUTODESK], [MIZUHO]]


def test_a_band_adds_agreed_but_unsure_spans_below_every_disagreement():
    unsure = ent(24, 32, 0.52)
    t1 = [row("coin", MIZUHO, unsure), row("sure", MIZUHO), row("split", MIZUHO)]
    t2 = [row("coin", MIZUHO, ent(24, 32, 0.55)), row("sure", MIZUHO), row("split")]
    assert [c.row["id"] for c in rank_contested([t1, t2])] == ["split"]
    ranked = rank_contested([t1, t2], Band(0.4, 0.6))
    assert [(c.row["id"], c.reason) for c in ranked] == [("split", "disagree"), ("coin", "band")]
    assert 0 < ranked[1].uncertainty <= 1 < ranked[0].uncertainty
    with pytest.raises(ValueError, match="low < high"):
        Band(0.6, 0.4)


def test_the_budget_keeps_the_most_uncertain_and_refuses_a_negative_one():
    t1 = [row(f"h{i}", MIZUHO, AUTODESK) for i in range(5)]
    t2 = [row("h0"), row("h1", MIZUHO), row("h2"), row("h3", MIZUHO), row("h4", MIZUHO, AUTODESK)]
    ranked = rank_contested([t1, t2])
    assert [c.row["id"] for c in within_budget(ranked, 2)] == ["h0", "h2"]  # ties by id
    assert len(within_budget(ranked, None)) == 4 and within_budget(ranked, 0) == []
    with pytest.raises(ValueError, match=">= 0"):
        within_budget(ranked, -1)


def test_people_get_only_what_the_llm_answered_unlike_every_teacher_most_contested_first():
    t1 = [row("a", MIZUHO, AUTODESK), row("b", MIZUHO, AUTODESK), row("c", MIZUHO)]
    t2 = [row("a", MIZUHO), row("b"), row("c", AUTODESK)]
    contested = rank_contested([t1, t2])
    llm = {"a": row("a", MIZUHO),  # equals teacher 2: two of three agree, the LLM stands
           "b": row("b", MIZUHO),  # differs from both
           "c": row("c", MIZUHO, AUTODESK, MAINT)}  # differs from both, more so
    out = for_people(contested, llm)
    assert [r["id"] for r in out] == ["c", "b"]
    assert out[0]["review_priority"] == disagreement(llm["c"], contested[0].teachers) == 3
    assert out[0]["teacher_spans"] == ["teacher 1: Mizuho", "teacher 2: Autodesk"]
    assert out[1]["review_priority"] == 2
    assert out[1]["entities"] == [{k: MIZUHO[k] for k in ("start", "end", "label", "text")}]
    assert for_people(contested, {}) == []  # no LLM answer (a dead letter): nothing to review


def test_people_beat_the_llm_which_beats_the_vote_and_unanswered_contested_rows_stay_out():
    silver = [{**row("agreed", MIZUHO), "agreement": 1.0},
              {**row("llm", MIZUHO), "agreement": 0.5},
              {**row("people", MIZUHO), "agreement": 0.5},
              {**row("dead", MIZUHO), "agreement": 0.5}]
    llm = {"llm": row("llm", AUTODESK), "people": row("people", AUTODESK)}
    people = {"people": row("people", MAINT)}
    out, sources = resolve_labels(silver, llm, people)
    by = {r["id"]: r for r in out}
    assert sources == {"teachers": 1, "llm": 1, "people": 1, "contested": 1}
    assert [e["text"] for e in by["llm"]["entities"]] == ["Autodesk"]
    assert [e["text"] for e in by["people"]["entities"]] == ["Maintains"]
    assert by["llm"]["agreement"] == by["people"]["agreement"] == 1.0
    assert by["dead"]["agreement"] == 0.5 and by["dead"]["label_source"] == "contested"
    assert {r["id"] for r in escalated_labels(out)} == {"llm", "people"}
