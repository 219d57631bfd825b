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
    # "Alcoa" is absent as written, so it matches "ALCOA"; the one-letter "A" matches only the
    # ticker shown as "(A)": neither the article "a" nor the capital word in "at A Shares"
    assert texts(t, al) == [(0, 5, "ALCOA"), (43, 44, "A")]
    assert al.hallucinated == []


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


def test_a_match_must_end_at_a_word_boundary():
    """A company whose name starts another word ("Apple" in "Applebee's", "Ford" in
    "Fordham") must not tag that word: both sides of a match are checked, not only the left."""
    t = "Applebee's Beats Apple; Fordham Hires Ford"
    al = align_spans(t, ["Apple", "Ford"])
    assert texts(t, al) == [(17, 22, "Apple"), (38, 42, "Ford")]
    assert al.hallucinated == []
    # the only occurrence is the prefix of a longer word: nothing is found, it is reported
    al = align_spans("Applebee's Beats Estimates", ["Apple"])
    assert al.spans == [] and al.hallucinated == ["Apple"]


def test_two_letter_mentions_match_only_as_written():
    """Case-insensitive matching starts at three characters: a two-letter answer is a ticker
    or a short name that Benzinga writes in capitals, and lower-casing it would tag words like
    "ge" or "Hp" that are something else."""
    t = "GE Cuts Dividend; Ge Unit and HP Gain"
    al = align_spans(t, ["ge", "Hp"])
    assert al.spans == []
    assert al.hallucinated == ["ge", "Hp"]
    # the exact capitals are found, and only those: "Ge" is not "GE"
    al = align_spans(t, ["GE", "HP"])
    assert texts(t, al) == [(0, 2, "GE"), (30, 32, "HP")]
    # three letters are long enough for the case-insensitive fallback
    al = align_spans("Ibm Rises", ["IBM"])
    assert texts("Ibm Rises", al) == [(0, 3, "Ibm")]
    # ... which is only a fallback: where the exact string is present, other cases are not tagged
    t2 = "Alcoa Rises; ALCOA Shares Up"
    assert texts(t2, align_spans(t2, ["Alcoa"])) == [(0, 5, "Alcoa")]


def test_a_one_letter_ticker_needs_both_parentheses():
    """"(A)" marks a ticker; an opening or a closing parenthesis alone does not."""
    assert align_spans("Results (A Unit Of Agilent) Rise", ["A"]).spans == []
    assert align_spans("Agilent Names Plan A) Today", ["A"]).spans == []
    assert [s.start for s in align_spans("Agilent (A) Rises", ["A"]).spans] == [9]


def test_non_string_answers_are_skipped_and_labels_kept():
    """An LLM answer list may hold numbers or nulls: they are neither spans nor hallucinations.
    The label asked for is the label given."""
    al = align_spans("Apple Rises", [None, 7, "Apple"], label="ORG")
    assert [(s.start, s.end, s.label) for s in al.spans] == [(0, 5, "ORG")]
    assert al.hallucinated == []


def test_a_match_must_start_at_a_word_boundary():
    assert align_spans("XApple Rises", ["Apple"]).spans == []  # one character before it
    al = align_spans("PineApple Rises; Apple Falls", ["Apple"])
    assert [s.start for s in al.spans] == [17]


def test_touching_matches_both_stay():
    """Two answers that touch (one ends where the other starts, both at word boundaries) do
    not overlap: both are spans, whichever is longer."""
    t = "Foo.-Barbaz Rises"
    assert [s.text for s in align_spans(t, ["Foo.", "-Barbaz"]).spans] == ["Foo.", "-Barbaz"]
    t = "Fooqux.-Bar Rises"
    assert [s.text for s in align_spans(t, ["Fooqux.", "-Bar"]).spans] == ["Fooqux.", "-Bar"]


def test_check_spans_refuses_empty_spans_and_accepts_touching_ones():
    t = "AppleTesla"
    with pytest.raises(ValueError, match="out of range"):
        check_spans(t, [Span(start=2, end=2, text="")])
    ok = check_spans(t, [Span(start=0, end=5, text="Apple"), Span(start=5, end=10, text="Tesla")])
    assert [s.text for s in ok] == ["Apple", "Tesla"]
