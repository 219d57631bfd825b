"""Write a curated sample in every form downstream stages read: JSONL with character spans
(review and training), a ``datasets.DatasetDict`` on disk, and the trainer forms (GLiNER
``tokenized_text``/``ner``, SpanMarker ``tokens``/``ner_tags``) from ``common.tokens``.

Every row is checked before it is written: its spans must be valid for its text
(``check_spans``) and both trainer forms must convert back to exactly those character spans.
A row that fails is left out and counted, rather than training a model on shifted labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.jsonl import write_jsonl
from common.spans import Span, check_spans
from common.tokens import iob_to_char_spans, to_gliner, to_spanmarker, token_to_char_spans, tokenize

ENTITY_FIELDS = ("start", "end", "label", "text", "cluster", "representative")


def hf_features() -> Any:
    """The DatasetDict schema, explicit so an empty split still has every column."""
    from datasets import Features, List, Value

    entity = {k: Value("int32") if k in ("start", "end") else Value("string")
              for k in ENTITY_FIELDS}
    return Features({"id": Value("string"), "text": Value("string"), "date": Value("string"),
                     "stock_symbol": Value("string"), "entities": List(entity),
                     "clusters": List(Value("string"))})


def trainer_forms(text: str, spans: list[Span]) -> tuple[dict, dict]:
    """(GLiNER example, SpanMarker example), or ValueError when either does not convert back
    to ``spans``: the round trip is what makes the trainer forms trustworthy."""
    g, sm = to_gliner(text, spans), to_spanmarker(text, spans)
    tokens = tokenize(text, [b for s in spans for b in (s.start, s.end)])
    want = [(s.start, s.end, s.label) for s in spans]
    if [(s.start, s.end, s.label) for s in token_to_char_spans(text, tokens, g["ner"])] != want \
            or [(s.start, s.end) for s in iob_to_char_spans(text, tokens, sm["ner_tags"])] \
            != [(a, b) for a, b, _ in want]:
        raise ValueError("token round trip changed the spans")
    return g, sm


def _hf_row(r: dict[str, Any]) -> dict[str, Any]:
    # A fixed schema for every row, so Arrow infers one type per column.
    return {"id": r["id"], "text": r["text"], "date": r.get("date") or "",
            "stock_symbol": r.get("stock_symbol") or "",
            "entities": [{k: e.get(k, "" if k in ("cluster", "representative") else None)
                          for k in ENTITY_FIELDS} for e in r["entities"]],
            "clusters": list(r.get("clusters", []))}


@dataclass
class Converted:
    """A sample converted and checked, not yet written: the caller can refuse an empty one
    before any file replaces an earlier curation's."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # kept, per split
    gliner: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    spanmarker: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    invalid_spans: list[str] = field(default_factory=list)  # ids left out

    @property
    def kept(self) -> int:
        """Rows that will be written, over every split."""
        return sum(len(v) for v in self.rows.values())


def convert_splits(splits: dict[str, list[dict]]) -> Converted:
    """Check every row's spans and build both trainer forms; a row that fails is left out."""
    conv = Converted()
    for name, rows in splits.items():
        kept, gl, sm = [], [], []
        for r in sorted(rows, key=lambda r: (r.get("date") or "", r["id"])):
            try:
                spans = sorted(check_spans(r["text"], [
                    {k: e[k] for k in ("start", "end", "label", "text")} for e in r["entities"]]),
                    key=lambda s: s.start)
                g, s = trainer_forms(r["text"], spans)
            except (ValueError, KeyError):
                conv.invalid_spans.append(r["id"])
                continue
            kept.append(r)
            gl.append(g)
            sm.append(s)
        conv.rows[name], conv.gliner[name], conv.spanmarker[name] = kept, gl, sm
    return conv


def write_splits(conv: Converted, out_dir: Path) -> dict[str, Any]:
    """Write ``out_dir/{split}.jsonl``, ``out_dir/hf`` and ``out_dir/{gliner,spanmarker}/``.

    Returns rows written per split and the ids of rows left out for invalid spans.
    """
    from datasets import Dataset, DatasetDict

    dd = {}
    for name, kept in conv.rows.items():
        write_jsonl(out_dir / f"{name}.jsonl", kept)
        write_jsonl(out_dir / "gliner" / f"{name}.jsonl", conv.gliner[name])
        write_jsonl(out_dir / "spanmarker" / f"{name}.jsonl", conv.spanmarker[name])
        hf_rows = [_hf_row(r) for r in kept]
        features = hf_features()
        dd[name] = Dataset.from_dict({c: [r[c] for r in hf_rows] for c in features},
                                     features=features)
    # One shard each: datasets writes an empty split as zero shards, which it cannot load.
    DatasetDict(dd).save_to_disk(str(out_dir / "hf"), num_shards=dict.fromkeys(dd, 1))
    return {"splits": {k: len(v) for k, v in conv.rows.items()},
            "invalid_spans": conv.invalid_spans}


def export_splits(splits: dict[str, list[dict]], out_dir: Path) -> dict[str, Any]:
    """Convert, check and write a sample (``convert_splits`` then ``write_splits``)."""
    return write_splits(convert_splits(splits), out_dir)
