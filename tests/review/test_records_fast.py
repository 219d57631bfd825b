"""What ``tickertag review push`` sends, checked without a server: the Argilla SDK builds
records and suggestions locally, so the exact spans a reviewer is shown and the order records
are reviewed in are fast to check here; the round trip through a real server is in
``test_review.py`` (slow)."""

from __future__ import annotations

from typing import Any

from workers.review.records import QUESTION, build_record, build_records


def _ent(text: str, word: str, score: float | None = None) -> dict[str, Any]:
    start = text.index(word)
    e = {"start": start, "end": start + len(word), "label": "Company", "text": word}
    if score is not None:
        e["score"] = score
    return e


CLEAN = "Apple Beats; Ford Falls"  # Apple 0-5, Ford 13-17
CALM = "Ford Recalls Cars"
HALLUCINATED = "Tesla Delivers; GM Gains"  # Tesla 0-5, GM 16-18
MISSED_TICKER = "GE Cuts Dividend; Boeing Rises"  # the provider's "GE" has no span
OWN = "Apple Inc Sues Samsung"


def _rows() -> list[dict[str, Any]]:
    llm = {"model": "llama-3.1-70b", "prompt_version": "companies-v1", "valid": True}
    return [
        # entities out of order: the suggestion lists them by start
        {**llm, "id": "r-clean", "text": CLEAN, "date": "2020-01-02", "stock_symbol": "AAPL",
         "entities": [_ent(CLEAN, "Ford", 0.8), _ent(CLEAN, "Apple", 0.9)]},
        {**llm, "id": "r-calm", "text": CALM, "date": "2020-01-02",
         "entities": [_ent(CALM, "Ford", 0.95)]},
        {**llm, "id": "r-halluc", "text": HALLUCINATED, "date": "2021-03-04",
         "hallucinated": ["Rivian"], "warning": "companies and normalized differ in length",
         "entities": [_ent(HALLUCINATED, "Tesla"), _ent(HALLUCINATED, "GM")]},
        {**llm, "id": "r-invalid", "text": "Dow Falls 300 Points", "date": "2021-01-01",
         "valid": False, "entities": []},
        {**llm, "id": "r-ge", "text": MISSED_TICKER, "date": "2018-07-01", "stock_symbol": "GE",
         "entities": [_ent(MISSED_TICKER, "Boeing", 0.7)]},
        # a priority set upstream (the cascade) wins over the reasons' weights
        {"id": "r-own", "text": OWN, "date": "2019-05-01", "review_priority": 5,
         "cluster": "c7", "teacher_spans": ["Apple Inc", "Apple"],
         "entities": [_ent(OWN, "Apple Inc", 0.6), _ent(OWN, "Samsung", 0.5)]},
        # a span whose text is not the headline's: left out, not pushed with wrong offsets
        {**llm, "id": "r-bad", "text": CALM, "entities": [
            {"start": 0, "end": 4, "label": "Company", "text": "Fore"}]},
    ]


def _suggestion(rec) -> dict[str, Any]:
    (sug,) = list(rec.suggestions)
    assert sug.question_name == QUESTION and sug.type == "model"
    return {"value": sug.value, "score": sug.score, "agent": sug.agent}


def test_suggestions_carry_the_exact_spans_and_scores():
    """Offsets are what a reviewer accepts with one click: an end off by one would become
    gold labels, so every suggested (start, end, label) is compared exactly."""
    records, rejected = build_records(_rows())
    assert rejected == ["r-bad"]
    by_id = {r.id: r for r in records}
    assert _suggestion(by_id["r-clean"]) == {
        "value": [{"start": 0, "end": 5, "label": "Company"},
                  {"start": 13, "end": 17, "label": "Company"}],
        "score": [0.9, 0.8], "agent": "llama-3.1-70b:companies-v1"}
    assert _suggestion(by_id["r-calm"])["value"] == [{"start": 0, "end": 4, "label": "Company"}]
    # spans without scores: no score list rather than a list of None
    assert _suggestion(by_id["r-halluc"]) == {
        "value": [{"start": 0, "end": 5, "label": "Company"},
                  {"start": 16, "end": 18, "label": "Company"}],
        "score": None, "agent": "llama-3.1-70b:companies-v1"}
    assert _suggestion(by_id["r-ge"])["value"] == [{"start": 18, "end": 24, "label": "Company"}]
    assert _suggestion(by_id["r-own"]) == {
        "value": [{"start": 0, "end": 9, "label": "Company"},
                  {"start": 15, "end": 22, "label": "Company"}],
        "score": [0.6, 0.5], "agent": "llm"}
    # an invalid answer suggests nothing (not "no company")
    assert list(by_id["r-invalid"].suggestions) == []
    # every suggested span slices out exactly the entity's text
    rows = {r["id"]: r for r in _rows()}
    for rec in records:
        text, ents = rec.fields["text"], sorted(rows[rec.id]["entities"], key=lambda e: e["start"])
        for sug in rec.suggestions:
            assert [text[v["start"]:v["end"]] for v in sug.value] == [e["text"] for e in ents]


def test_records_are_ranked_by_priority_then_date_then_id():
    """Argilla shows records in its own random order; ``review_order`` is the only way a
    reviewer sees the doubtful ones first, so the rank and the priority behind it are exact."""
    records, _ = build_records(_rows())
    assert [(r.id, r.metadata["review_order"], r.metadata["priority"]) for r in records] == [
        ("r-invalid", 1, 8),  # invalid answer: 8
        ("r-own", 2, 5),  # its own priority; before r-halluc by date
        ("r-halluc", 3, 5),  # hallucinated 4 + warning 1
        ("r-ge", 4, 2),  # the provider's ticker is in the headline, untagged: disagree 2
        ("r-calm", 5, 0),  # same priority and date as r-clean: by id
        ("r-clean", 6, 0),
    ]
    by_id = {r.id: dict(r.metadata) for r in records}
    assert by_id["r-clean"] == {"priority": 0, "review_reason": ["none"], "date": "2020-01-02",
                                "year": 2020, "stock_symbol": "AAPL", "review_order": 6}
    assert by_id["r-halluc"]["review_reason"] == ["hallucinated", "warning"]
    assert by_id["r-ge"]["review_reason"] == ["disagree"]
    assert by_id["r-own"] == {"priority": 5, "review_reason": ["none"], "date": "2019-05-01",
                              "year": 2019, "cluster": ["c7"],
                              "teacher_spans": ["Apple Inc", "Apple"], "review_order": 2}


def test_the_last_row_of_an_id_wins_and_one_record_alone_has_no_rank():
    rows = _rows()[:2]
    again = {**rows[0], "entities": [_ent(CLEAN, "Apple", 0.9)], "hallucinated": ["Intel"]}
    records, rejected = build_records([*rows, again])
    assert rejected == [] and [r.id for r in records] == ["r-clean", "r-calm"]
    assert _suggestion(records[0])["value"] == [{"start": 0, "end": 5, "label": "Company"}]
    assert records[0].metadata["priority"] == 4
    rec, prio = build_record(rows[0])
    assert prio == 0 and "review_order" not in dict(rec.metadata)
