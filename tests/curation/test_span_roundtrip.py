"""char spans -> trainer token forms -> char spans is the identity (common/tokens.py), on
generated texts and on every labeled headline."""

from __future__ import annotations

from curation_data import labeled_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from common.spans import Span
from common.tokens import iob_to_char_spans, to_gliner, to_spanmarker, token_to_char_spans, tokenize
from workers.curate.export import trainer_forms

WORDS = st.sampled_from(["Apple", "Inc.", "AT&T", "Coca-Cola's", "$TSLA", "(A)", "Dun", "&",
                         "Bradstreet", "rises", "3.5%", "Ma'aden-Alcoa", "JV", ",", "Q3", "é",
                         "BRK.B", "Nokia Oyj", "AGPDY.PK", "—", "S&P", "500", "U.S."])


@st.composite
def text_and_spans(draw, text_strategy=None):
    """A text and valid spans over it: in range, not overlapping, no blank at either end."""
    if text_strategy is None:
        text = " ".join(draw(st.lists(WORDS, min_size=1, max_size=12)))
    else:
        text = draw(text_strategy)
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=8))))
    spans, last = [], 0
    for a, b in zip(cuts[::2], cuts[1::2], strict=False):
        a = max(a, last)
        seg = text[a:b]
        a += len(seg) - len(seg.lstrip())
        b -= len(seg) - len(seg.rstrip())
        if a < b:
            spans.append(Span(start=a, end=b, text=text[a:b]))
            last = b
    return text, spans


def _assert_round_trip(text: str, spans: list[Span]) -> None:
    g = to_gliner(text, spans)
    toks = tokenize(text, [x for s in spans for x in (s.start, s.end)])
    assert [t for t, _, _ in toks] == g["tokenized_text"]
    back = token_to_char_spans(text, toks, g["ner"])
    assert [(s.start, s.end, s.label, s.text) for s in back] == \
        [(s.start, s.end, s.label, s.text) for s in spans]
    sm = to_spanmarker(text, spans)
    assert [t for t, _, _ in toks] == sm["tokens"]
    back2 = iob_to_char_spans(text, toks, sm["ner_tags"])
    assert [(s.start, s.end, s.text) for s in back2] == [(s.start, s.end, s.text) for s in spans]


@settings(max_examples=300, deadline=None)
@given(text_and_spans())
def test_char_token_char_is_identity_on_headline_words(ts):
    _assert_round_trip(*ts)


@settings(max_examples=300, deadline=None)
@given(text_and_spans(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)),
                              min_size=1, max_size=40)))
def test_char_token_char_is_identity_on_any_text(ts):
    _assert_round_trip(*ts)


def test_every_labeled_headline_round_trips():
    rows = labeled_rows()
    assert len(rows) > 3000
    for r in rows:
        spans = [Span(**e) for e in r["entities"]]
        trainer_forms(r["text"], spans)  # raises if either form does not come back
        _assert_round_trip(r["text"], spans)
