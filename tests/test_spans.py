import pytest

from common.spans import Span, align_spans, check_spans


def texts(text, al):
    return [(s.start, s.end, text[s.start:s.end]) for s in al.spans]


def test_exact_and_every_occurrence():
    t = "Apple Sues Samsung; Samsung Countersues Apple"
    al = align_spans(t, ["Apple", "Samsung"])
    assert [x[2] for x in texts(t, al)] == ["Apple", "Samsung", "Samsung", "Apple"]
    assert al.hallucinated == []


def test_case_insensitive_only_when_exact_missing_and_long_enough():
    t = "ALCOA Beats Estimates; a Peek at A Shares (A)"
    al = align_spans(t, ["Alcoa", "A"])
    got = [x[2] for x in texts(t, al)]
    assert got[0] == "ALCOA"
    # "A" matches the ticker and the capital word "A", never the article "a".
    assert all(t[s.start:s.end] == "A" for s in al.spans[1:])
    assert not any(t[s.start:s.end] == "a" for s in al.spans)


def test_word_boundaries_and_longest_wins():
    t = "Agilent Technologies Inc. Beats; Magilent Is Not Agilent"
    al = align_spans(t, ["Agilent", "Agilent Technologies Inc."])
    got = [x[2] for x in texts(t, al)]
    assert got == ["Agilent Technologies Inc.", "Agilent"]  # the one inside "Magilent" is not a match


def test_hallucinations_dropped_and_reported():
    t = "Mizuho Maintains Buy on Autodesk"
    al = align_spans(t, ["Mizuho", "Microsoft", "  ", "$Autodesk"])
    assert [x[2] for x in texts(t, al)] == ["Mizuho", "Autodesk"]
    assert al.hallucinated == ["Microsoft"]


def test_check_spans_rejects_bad_spans():
    t = "Apple and Tesla"
    assert check_spans(t, [{"start": 0, "end": 5, "text": "Apple"}])
    with pytest.raises(ValueError, match="not 'Tesla'"):
        check_spans(t, [Span(start=0, end=5, text="Tesla")])
    with pytest.raises(ValueError, match="overlaps"):
        check_spans(t, [Span(start=0, end=5, text="Apple"), Span(start=2, end=5, text="ple")])
    with pytest.raises(ValueError, match="out of range"):
        check_spans(t, [Span(start=10, end=40, text="x")])


def test_a_one_letter_answer_tags_only_a_ticker_shown_as_one():
    a = align_spans("A Look At Agilent Technologies (A) Earnings", ["A"])
    assert [(s.start, s.text) for s in a.spans] == [(32, "A")]
    assert align_spans("A Look At Agilent's Earnings", ["A"]).spans == []
    assert align_spans("A Look At Agilent's Earnings", ["A"]).hallucinated == ["A"]
    assert [s.text for s in align_spans("Ford ($F) Rallies; F Shares Up", ["F"]).spans] == ["F"]
    assert [s.text for s in align_spans("NYSE: A Gains", ["A"]).spans] == ["A"]
    assert [s.text for s in align_spans("GE Cuts Dividend", ["GE"]).spans] == ["GE"]
