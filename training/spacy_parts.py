"""The pieces of the spaCy student that both training loops build with: the blank NER of a
recipe's size, the spans a spaCy tokenisation can hold, the model directory's pipeline folder
and the prediction every spaCy tagger makes.

Why a module of their own: the custom loop (``training/spacy_trainer.py``), the spaCy project
export (``training/spacy_project.py``) and spaCy's own loop run here
(``training/spacy_loop.py``) must build one architecture and cut one set of spans; each imports
them from here, none from another loop.
"""

from __future__ import annotations

from typing import Any

from common.spans import LABEL, Span
from training.config import SpacyOptions
from training.data import spans_of

PIPELINE_DIR = "pipeline"  # inside the model directory


def predict_spans(nlp: Any, texts: list[str], batch_size: int = 64,
                  labels: frozenset[str] = frozenset({LABEL})) -> list[list[Span]]:
    """Entities of the given spaCy labels as ``Company`` character spans. spaCy's greedy
    transition-based NER has no per-span probability, so ``score`` is ``None`` (unknown), not a
    1.0 that would read as certainty."""
    return [[Span(start=e.start_char, end=e.end_char, label=LABEL, text=e.text, score=None)
             for e in doc.ents if e.label_ in labels]
            for doc in nlp.pipe(texts, batch_size=batch_size)]


def aligned_spans(doc: Any, row: dict) -> tuple[list[Any], int]:
    """The row's spans as spaCy ``Company`` spans of ``doc``, and how many were left out because
    they cut a spaCy token (a token-level NER cannot learn them; both the custom loop and the
    exported spaCy corpus leave them out and count them)."""
    ents = [doc.char_span(s.start, s.end, label=LABEL) for s in spans_of(row)]
    kept = [e for e in ents if e is not None]
    return kept, len(ents) - len(kept)


def blank_ner(o: SpacyOptions) -> Any:
    """A fresh English pipeline with one NER of the configured CNN size (spaCy's own
    architectures, named and versioned as in its config system)."""
    import spacy

    nlp = spacy.blank("en")
    tok2vec = {
        "@architectures": "spacy.Tok2Vec.v2",
        "embed": {"@architectures": "spacy.MultiHashEmbed.v2", "width": o.width,
                  "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"][:len(o.embed_rows)],
                  "rows": o.embed_rows, "include_static_vectors": False},
        "encode": {"@architectures": "spacy.MaxoutWindowEncoder.v2", "width": o.width,
                   "depth": o.depth, "window_size": o.window_size,
                   "maxout_pieces": o.maxout_pieces},
    }
    nlp.add_pipe("ner", config={"model": {
        "@architectures": "spacy.TransitionBasedParser.v2", "state_type": "ner",
        "extra_state_tokens": False, "hidden_width": o.hidden_width, "maxout_pieces": 2,
        "use_upper": True, "nO": None, "tok2vec": tok2vec}})
    return nlp
