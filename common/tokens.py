"""Conversions between character spans and the token-level forms the trainers need.

GLiNER wants ``{"tokenized_text": [...], "ner": [[start_tok, end_tok_inclusive, label]]}``;
SpanMarker wants ``{"tokens": [...], "ner_tags": [int, ...]}`` (IOB2 over a label list).
Tokenisation splits at every span boundary, so char -> tokens -> char is the identity on every
valid span set, including names that end inside a word-like run (``Apple`` in ``Apple's``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from common.spans import LABEL, Span

# The same word pattern as GLiNER's default WhitespaceTokenSplitter, so training examples are
# split the way the model splits text at inference ("Coca-Cola" is one word).
_TOKEN = re.compile(r"\w+(?:[-_]\w+)*|\S")

IOB_LABELS = ["O", f"B-{LABEL}", f"I-{LABEL}"]


def tokenize(text: str, boundaries: Iterable[int] = ()) -> list[tuple[str, int, int]]:
    """Word/punctuation tokens with character offsets, also split at the given offsets."""
    cuts = sorted(set(boundaries))
    out: list[tuple[str, int, int]] = []
    for m in _TOKEN.finditer(text):
        start, end = m.start(), m.end()
        for c in cuts:
            if start < c < end:
                out.append((text[start:c], start, c))
                start = c
        out.append((text[start:end], start, end))
    return out


def _boundaries(spans: Sequence[Span]) -> list[int]:
    return [b for s in spans for b in (s.start, s.end)]


def char_to_token_spans(
    tokens: Sequence[tuple[str, int, int]], spans: Sequence[Span]
) -> list[tuple[int, int, str]]:
    """Character spans -> (first token, last token inclusive, label)."""
    starts = {s: i for i, (_, s, _) in enumerate(tokens)}
    ends = {e: i for i, (_, _, e) in enumerate(tokens)}
    out = []
    for sp in spans:
        if sp.start not in starts or sp.end not in ends:
            raise ValueError(f"span {sp.start}:{sp.end} {sp.text!r} does not fall on tokens")
        out.append((starts[sp.start], ends[sp.end], sp.label))
    return out


def token_to_char_spans(
    text: str, tokens: Sequence[tuple[str, int, int]], tok_spans: Iterable[Sequence]
) -> list[Span]:
    """(first token, last token inclusive, label[, score]) -> character spans."""
    out = []
    for ts in tok_spans:
        first, last, label = int(ts[0]), int(ts[1]), str(ts[2])
        start, end = tokens[first][1], tokens[last][2]
        score = float(ts[3]) if len(ts) > 3 else None
        out.append(Span(start=start, end=end, label=label, text=text[start:end], score=score))
    return out


def to_gliner(text: str, spans: Sequence[Span], label: str | None = None) -> dict:
    """A GLiNER training example. ``label`` renames the entity type (GLiNER prompts by name)."""
    tokens = tokenize(text, _boundaries(spans))
    ner = [[a, b, label or lab] for a, b, lab in char_to_token_spans(tokens, spans)]
    return {"tokenized_text": [t for t, _, _ in tokens], "ner": ner}


def to_spanmarker(text: str, spans: Sequence[Span]) -> dict:
    """A SpanMarker training example with IOB2 tag ids over IOB_LABELS."""
    tokens = tokenize(text, _boundaries(spans))
    tags = [0] * len(tokens)
    for a, b, _ in char_to_token_spans(tokens, spans):
        tags[a] = 1
        for i in range(a + 1, b + 1):
            tags[i] = 2
    return {"tokens": [t for t, _, _ in tokens], "ner_tags": tags}


def iob_to_char_spans(text: str, tokens: Sequence[tuple[str, int, int]], tags: Sequence[int]) -> list[Span]:
    """IOB2 tag ids over IOB_LABELS -> character spans (the SpanMarker round trip)."""
    tok_spans: list[tuple[int, int, str]] = []
    cur: list[int] | None = None
    for i, t in enumerate(tags):
        if t == 1 or (t == 2 and cur is None):
            if cur:
                tok_spans.append((cur[0], cur[1], LABEL))
            cur = [i, i]
        elif t == 2 and cur is not None:
            cur[1] = i
        else:
            if cur:
                tok_spans.append((cur[0], cur[1], LABEL))
            cur = None
    if cur:
        tok_spans.append((cur[0], cur[1], LABEL))
    return token_to_char_spans(text, tokens, tok_spans)
