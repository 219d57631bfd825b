"""Silver labels: the held-out guard, the teachers' vote, and the paired bootstrap."""

from __future__ import annotations

import json

import pytest

from common.metrics import paired_bootstrap
from common.spans import Span
from training.data import norm_text, read_jsonl
from training.silver import (
    TEST_FILES,
    ProtectedHeadline,
    build_pool,
    combine_silver,
    protected_texts,
    silver_quality,
)


def _tagged(hid: str, text: str, spans: list[tuple[int, int, float]]) -> dict:
    return {"id": hid, "text": text, "entities": [
        {"start": s, "end": e, "label": "Company", "text": text[s:e], "score": sc}
        for s, e, sc in spans]}


def test_every_test_title_is_protected():
    prot = protected_texts()
    for f in TEST_FILES:
        rows = read_jsonl(f)
        assert rows and all(norm_text(r["text"]) in prot for r in rows)


def test_pool_drops_held_out_titles_duplicates_and_invalid_rows(tmp_path):
    test_title = read_jsonl(TEST_FILES[1])[0]["text"]
    rows = [{"title": "Apple Beats Estimates"}, {"title": "apple  beats estimates"},
            {"title": test_title.upper()}, {"title": ""}, {"title": "Ford Recalls Cars"}]
    rep = build_pool(rows, tmp_path / "pool.jsonl", protected_texts())
    kept = [r["text"] for r in read_jsonl(tmp_path / "pool.jsonl")]
    assert kept == ["Apple Beats Estimates", "Ford Recalls Cars"]
    assert (rep.rows, rep.kept, rep.protected, rep.duplicates, rep.rejected) == (5, 2, 1, 1, 1)


def test_a_test_headline_cannot_enter_the_silver_set():
    t = read_jsonl(TEST_FILES[0])[3]["text"]
    with pytest.raises(ProtectedHeadline, match="held out"):
        combine_silver([[_tagged("x", t, [])]], protected_texts())


def test_majority_vote_scores_and_disagreements():
    text = "Goldman Sachs Upgrades Apple, Cuts Ford"
    a = [_tagged("h", text, [(0, 13, 0.9), (23, 28, 0.8)])]
    b = [_tagged("h", text, [(0, 13, 0.7), (35, 39, 0.6)])]
    c = [_tagged("h", text, [(0, 13, 0.8), (23, 28, 0.6)])]
    silver, disagree = combine_silver([a, b, c], set())
    ents = silver[0]["entities"]
    assert [e["text"] for e in ents] == ["Goldman Sachs", "Apple"]  # Ford: 1 vote of 3
    assert ents[0]["score"] == pytest.approx(0.8)  # 3/3 teachers x mean 0.8
    assert ents[1]["score"] == pytest.approx(2 / 3 * 0.7, abs=1e-4)
    assert disagree == silver and silver[0]["agreement"] == pytest.approx(1 / 3, abs=1e-4)
    unanimous, none = combine_silver([a, a], set())
    assert none == [] and unanimous[0]["agreement"] == 1.0
    # a headline one teacher never tagged (dead-lettered) gets no vote, not an empty label
    assert combine_silver([a, []], set()) == ([], [])


def test_silver_quality_counts_only_shared_headlines(tmp_path):
    gold = read_jsonl(TEST_FILES[0])[:5]
    silver = [{"id": str(i), "text": g["text"], "entities": g["entities"]} for i, g in
              enumerate(gold[:3])]
    q = silver_quality(silver, [TEST_FILES[0]])
    assert q["benzinga_gold_test.jsonl"]["headlines"] == 3
    assert q["benzinga_gold_test.jsonl"]["f1"] == 1.0


def test_paired_bootstrap_sees_a_real_gain_and_no_gain_on_a_tie():
    gold = [[Span(start=0, end=5, label="Company", text="Apple")]] * 40
    good = gold
    bad = [[] if i % 2 else g for i, g in enumerate(gold)]
    d = paired_bootstrap(gold, good, bad, n=300)
    assert d.delta > 0 and d.ci95[0] > 0 and d.p_not_better == 0
    tie = paired_bootstrap(gold, bad, bad, n=300)
    assert tie.delta == 0 and tie.ci95 == (0.0, 0.0) and tie.p_not_better == 1.0


def _ent(text: str, s: int, e: int, score: float) -> dict:
    return {"start": s, "end": e, "label": "Company", "text": text[s:e], "score": score}


GS_TEXT = "Goldman Sachs Upgrades Apple, Cuts Ford"  # (0, 13), (23, 28), (35, 39)


def test_min_votes_sets_how_many_teachers_must_agree():
    """``min_votes`` is the knob between recall (one teacher is enough) and precision (all
    must agree); it replaces the default majority rather than being ignored."""
    t = GS_TEXT
    teachers = [[_tagged("h", t, [(0, 13, 0.9), (23, 28, 0.8), (35, 39, 0.6)])],
                [_tagged("h", t, [(0, 13, 0.7), (23, 28, 0.6)])],
                [_tagged("h", t, [(0, 13, 0.8)])]]
    # score = share of teachers voting x their mean score, rounded to 4 places
    gs, apple, ford = _ent(t, 0, 13, 0.8), _ent(t, 23, 28, 0.4667), _ent(t, 35, 39, 0.2)
    assert combine_silver(teachers, set(), min_votes=1)[0][0]["entities"] == [gs, apple, ford]
    assert combine_silver(teachers, set())[0][0]["entities"] == [gs, apple]  # 2 of 3
    assert combine_silver(teachers, set(), min_votes=2)[0][0]["entities"] == [gs, apple]
    assert combine_silver(teachers, set(), min_votes=3)[0][0]["entities"] == [gs]


def test_a_two_two_tie_among_four_teachers_is_not_a_majority():
    """The default is a strict majority (3 of 4): half the teachers are not enough."""
    t = GS_TEXT
    teachers = [[_tagged("h", t, [(0, 13, 1.0), (23, 28, 1.0), (35, 39, 0.9)])],
                [_tagged("h", t, [(0, 13, 1.0), (23, 28, 1.0), (35, 39, 0.9)])],
                [_tagged("h", t, [(0, 13, 1.0), (35, 39, 0.6)])],
                [_tagged("h", t, [(0, 13, 1.0)])]]
    silver, disagree = combine_silver(teachers, set())
    assert silver[0]["entities"] == [_ent(t, 0, 13, 1.0), _ent(t, 35, 39, 0.6)]  # Apple: 2-2
    assert silver[0]["teachers"] == 4 and silver[0]["agreement"] == 0.3333
    assert disagree == silver
    # two teachers: both must agree (2 of 2), one is a tie
    silver, _ = combine_silver(teachers[1:3], set())
    assert silver[0]["entities"] == [_ent(t, 0, 13, 1.0), _ent(t, 35, 39, 0.75)]


def test_overlapping_voted_spans_keep_the_higher_scored_one():
    """Teachers that disagree on a boundary ("Goldman Sachs" or "Goldman Sachs Group") can
    both pass the vote; the label set is flat, so only the better-supported span may stay,
    and a span overlapping neither is untouched."""
    t = "Goldman Sachs Group Upgrades Apple"  # (0, 19), (0, 13), (29, 34)
    apple = (29, 34, 1.0)
    # h1: the shorter span has more votes; h2: the longer one has
    teachers = [[_tagged("h1", t, [(0, 19, 0.9), apple]), _tagged("h2", t, [(0, 19, 0.9), apple])],
                [_tagged("h1", t, [(0, 13, 0.8), apple]), _tagged("h2", t, [(0, 19, 0.9), apple])],
                [_tagged("h1", t, [(0, 13, 0.7), apple]), _tagged("h2", t, [(0, 13, 0.6), apple])]]
    silver, _ = combine_silver(teachers, set(), min_votes=1)
    by_id = {r["id"]: r["entities"] for r in silver}
    # h1: (0, 13) scores 2/3 x 0.75 = 0.5, (0, 19) 1/3 x 0.9 = 0.3
    assert by_id["h1"] == [_ent(t, 0, 13, 0.5), _ent(t, 29, 34, 1.0)]
    # h2: (0, 19) scores 2/3 x 0.9 = 0.6, (0, 13) 1/3 x 0.6 = 0.2
    assert by_id["h2"] == [_ent(t, 0, 19, 0.6), _ent(t, 29, 34, 1.0)]


def test_adjacent_voted_spans_both_stay():
    """Spans that touch (one ends where the next starts) do not overlap: both stay, whichever
    scores higher."""
    t = "Alphabet-Google Merger"  # (0, 8) and (8, 15) touch at the hyphen
    left_first = _tagged("h1", t, [(0, 8, 0.9), (8, 15, 0.8)])
    right_first = _tagged("h2", t, [(0, 8, 0.8), (8, 15, 0.9)])
    silver, _ = combine_silver([[left_first, right_first]], set())
    assert [[(e["start"], e["end"]) for e in r["entities"]] for r in silver] == [
        [(0, 8), (8, 15)], [(0, 8), (8, 15)]]


def _row(text: str, *names: str, at: int = 0) -> dict:
    """A labelled row tagging each name's first occurrence at or after ``at``."""
    ents = []
    for n in names:
        s = text.index(n, at)
        ents.append({"start": s, "end": s + len(n), "label": "Company", "text": n})
    return {"id": text, "text": text, "entities": ents}


def test_silver_quality_scores_exact_spans_and_realigns_a_respaced_title(tmp_path):
    """Per labelled file: the shared headlines, and exact-span P/R/F1 rounded to 4 places. A
    silver title spaced differently from the gold one is moved onto the gold text; one spaced
    the same keeps its own offsets (a second "Ford" stays the second)."""
    ford = "Ford Rallies As Ford Dealers Cheer"
    gold = [_row(ford, "Ford", at=5),  # only the second Ford is a span here
            _row("Shares Of Apple Rise", "Apple"),
            _row("Dow Falls 300 Points"),
            _row("Microsoft And Google Team Up With Intel And IBM", "Microsoft", "Google",
                 "Intel", "IBM"),
            _row("Nobody Tagged This In Silver", "Nobody")]
    gold_file = tmp_path / "gold.jsonl"
    gold_file.write_text("".join(json.dumps(r) + "\n" for r in gold))
    silver = [_row(ford, "Ford", at=5),  # tp
              _row("Shares  Of Apple Rise", "Apple"),  # tp once realigned (11 -> 10)
              _row("Dow Falls 300 Points", "Dow"),  # fp
              _row("Microsoft And Google Team Up With Intel And IBM"),  # 4 fn
              _row("A Headline Gold Does Not Have", "A")]
    q = silver_quality(silver, [gold_file])
    # tp 2, fp 1, fn 4: P 2/3, R 1/3, F1 4/9
    assert q == {"gold.jsonl": {"headlines": 4, "precision": 0.6667, "recall": 0.3333,
                                "f1": 0.4444}}


def test_pool_counts_every_dropped_row_and_stops_at_the_limit(tmp_path):
    test_title = read_jsonl(TEST_FILES[1])[0]["text"]
    rows = [{"title": "Apple Beats"}, {"title": "apple beats"}, {"title": "APPLE  BEATS"},
            {"title": test_title}, {"title": test_title.lower()}, {"title": ""}, {"title": " "},
            {"title": "Ford Recalls"}, {"title": "Tesla Rallies"}, {"title": "Never Read"}]
    rep = build_pool(rows, tmp_path / "pool.jsonl", protected_texts(), limit=3)
    assert [r["text"] for r in read_jsonl(tmp_path / "pool.jsonl")] == [
        "Apple Beats", "Ford Recalls", "Tesla Rallies"]
    # the 10th row is never read: the limit was reached at the 9th
    assert (rep.rows, rep.kept, rep.protected, rep.duplicates, rep.rejected) == (9, 3, 2, 2, 2)


def test_silver_rows_carry_the_headline_and_count_every_complete_headline():
    """A silver row keeps the headline's text, date and symbol; unscored spans count as sure
    (1.0); a headline without any span is agreed on; a headline one teacher lacks is skipped
    and the ones after it are still combined."""
    t1, t2, t3 = "Apple Beats Estimates", "Dow Falls", "Ford Recalls Cars"
    a = [{"id": "h1", "text": t1, "date": "2020-01-02", "stock_symbol": "AAPL",
          "entities": [{"start": 0, "end": 5, "label": "Company", "text": "Apple"}]},
         {"id": "h2", "text": t2, "entities": []},
         {"id": "h3", "text": t3, "date": "2020-01-03", "stock_symbol": "F", "entities": []}]
    b = [a[0], a[2]]  # h2 was dead-lettered for this teacher
    silver, disagree = combine_silver([a, b], set())
    assert silver == [
        {"id": "h1", "text": t1, "date": "2020-01-02", "stock_symbol": "AAPL",
         "entities": [{"start": 0, "end": 5, "label": "Company", "text": "Apple", "score": 1.0}],
         "teachers": 2, "agreement": 1.0},
        {"id": "h3", "text": t3, "date": "2020-01-03", "stock_symbol": "F", "entities": [],
         "teachers": 2, "agreement": 1.0}]
    assert disagree == []


def test_a_respaced_title_takes_the_first_occurrence_of_each_name(tmp_path):
    gold = [_row("Ford Says Ford Wins", "Ford")]  # the first Ford, at 0
    gold_file = tmp_path / "gold.jsonl"
    gold_file.write_text(json.dumps(gold[0]) + "\n")
    q = silver_quality([_row("Ford Says  Ford Wins", "Ford")], [gold_file])
    assert q["gold.jsonl"]["f1"] == 1.0


def test_write_silver_and_read_it_back(tmp_path):
    from training.silver import read_tagged, write_silver

    row = _row("Apple Beats", "Apple")
    write_silver(tmp_path, [row], [], {"teachers": 2})
    assert read_tagged(tmp_path / "silver.jsonl") == [row]
    assert read_tagged(tmp_path / "disagreements.jsonl") == []
    assert json.loads((tmp_path / "silver.json").read_text()) == {"teachers": 2}
