"""Silver labels: the unlabelled headline pool tagged by one or more teachers, then combined.

Why here and not in the student trainer: silver labels are data with a provenance (which teacher,
how many agreed, how sure), and the same silver file feeds every student, the disagreement list
for reviewers and the quality check against gold.

Held-out titles never enter a silver set. ``build_pool`` drops every headline whose normalised
text is in a protected file (the test files, and the valid files so that selecting the student's
epoch is never done on headlines it was trained on), and ``combine_silver`` refuses a protected
title again, so a pool built elsewhere cannot leak one either.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.jsonl import read_jsonl as read_plain_jsonl
from common.metrics import score
from common.paths import LABELED_DIR
from common.records import InvalidRecord, make_headline
from common.spans import LABEL, Span
from training.data import norm_text, read_jsonl, spans_of, write_jsonl

TEST_FILES = [LABELED_DIR / "benzinga_gold_test.jsonl", LABELED_DIR / "benzinga_gold_test2.jsonl"]
VALID_FILES = [LABELED_DIR / "benzinga_gold_valid.jsonl",
               LABELED_DIR / "benzinga_llm_extra_valid.jsonl"]
# The LLM-labelled test headlines are the same 2019-2020 band as gold test: protect them too.
PROTECTED_FILES = [*TEST_FILES, LABELED_DIR / "benzinga_llm_test.jsonl",
                   LABELED_DIR / "benzinga_llm_valid.jsonl", *VALID_FILES]


class ProtectedHeadline(ValueError):
    """A held-out (test or valid) title reached a silver set."""


def protected_texts(files: Iterable[str | Path] = PROTECTED_FILES) -> set[str]:
    """Normalised titles of every held-out file that exists."""
    out: set[str] = set()
    for f in files:
        if Path(f).exists():
            out.update(norm_text(r["text"]) for r in read_jsonl(f))
    return out


@dataclass
class PoolReport:
    rows: int = 0
    kept: int = 0
    protected: int = 0
    duplicates: int = 0
    rejected: int = 0


def build_pool(rows: Iterable[dict[str, Any]], out: str | Path, protected: set[str],
               limit: int | None = None) -> PoolReport:
    """Write the distinct, valid, non-protected headlines of ``rows`` (source rows with
    ``title``) to ``out`` as JSONL (``id``, ``text``, ``date``, ``stock_symbol``)."""
    rep, seen, kept = PoolReport(), set(), []
    for i, row in enumerate(rows, start=1):
        rep.rows += 1
        try:
            h = make_headline(row, record=f"pool#{i}")
        except InvalidRecord:
            rep.rejected += 1
            continue
        key = norm_text(h.text)
        if key in protected:
            rep.protected += 1
            continue
        if key in seen:
            rep.duplicates += 1
            continue
        seen.add(key)
        kept.append(h.model_dump())
        if limit and len(kept) >= limit:
            break
    write_jsonl(out, kept)
    rep.kept = len(kept)
    return rep


def _span_key(e: dict | Span) -> tuple[int, int]:
    return (e["start"], e["end"]) if isinstance(e, dict) else (e.start, e.end)


def combine_silver(teacher_rows: Sequence[Sequence[dict[str, Any]]], protected: set[str],
                   min_votes: int | None = None) -> tuple[list[dict], list[dict]]:
    """Combine several teachers' tagged copies of the same headlines (matched by ``id``).

    A span is kept when at least ``min_votes`` teachers predicted exactly it (default: a strict
    majority; with one teacher, that teacher). Each kept span's ``score`` is the share of
    teachers that voted for it times their mean score, so a student or a reviewer can tell a
    unanimous, confident span from a narrow vote. Returns (silver rows, disagreements): the rows
    where the teachers' span sets differ, most contested first, are what a reviewer should see.
    Raises ``ProtectedHeadline`` if a held-out title is among them.
    """
    k = len(teacher_rows)
    if k == 0:
        return [], []
    need = min_votes or (k // 2 + 1)
    by_id = [{r["id"]: r for r in rows} for rows in teacher_rows]
    silver, disagree = [], []
    for hid, first in by_id[0].items():
        if norm_text(first["text"]) in protected:
            raise ProtectedHeadline(f"headline {hid} ({first['text']!r}) is held out for "
                                    "evaluation and must not be in a silver set")
        copies = [m.get(hid) for m in by_id]
        if any(c is None for c in copies):
            continue  # not tagged by every teacher (dead-lettered): no vote to count
        votes: Counter[tuple[int, int]] = Counter()
        scores: dict[tuple[int, int], list[float]] = {}
        for c in copies:
            for e in {_span_key(e): e for e in c.get("entities") or []}.values():
                key = _span_key(e)
                votes[key] += 1
                scores.setdefault(key, []).append(float(e.get("score") or 1.0))
        text = first["text"]
        ents = [{"start": s, "end": e, "label": LABEL, "text": text[s:e],
                 "score": round(n / k * sum(scores[(s, e)]) / n, 4)}
                for (s, e), n in sorted(votes.items()) if n >= need]
        ents = _drop_overlaps(ents)
        agreement = sum(1 for n in votes.values() if n == k) / len(votes) if votes else 1.0
        row = {"id": hid, "text": text, "date": first.get("date"),
               "stock_symbol": first.get("stock_symbol"), "entities": ents,
               "teachers": k, "agreement": round(agreement, 4)}
        silver.append(row)
        if agreement < 1.0:
            disagree.append(row)
    disagree.sort(key=lambda r: r["agreement"])
    return silver, disagree


def _drop_overlaps(ents: list[dict]) -> list[dict]:
    """Keep the higher-scored of overlapping spans (the label set is flat, spans never nest)."""
    kept: list[dict] = []
    for e in sorted(ents, key=lambda e: (-e["score"], e["start"])):
        if all(e["end"] <= k["start"] or e["start"] >= k["end"] for k in kept):
            kept.append(e)
    return sorted(kept, key=lambda e: e["start"])


def silver_quality(silver: list[dict], labelled_files: Iterable[str | Path]) -> dict[str, Any]:
    """Exact-span F1 of the silver labels against every labelled file, on the headlines both
    have (matched by normalised text). The teachers trained on the training files, so this is an
    in-sample figure there; the teachers' test F1 is the held-out estimate of silver quality."""
    by_text = {norm_text(r["text"]): r for r in silver}
    out: dict[str, Any] = {}
    for f in labelled_files:
        gold, pred = [], []
        for g in read_jsonl(f):
            s = by_text.get(norm_text(g["text"]))
            if s is not None:
                gold.append(spans_of(g))
                pred.append([Span(**{k: e[k] for k in ("start", "end", "label", "text")})
                             for e in s["entities"]] if s["text"] == g["text"] else
                            _realign(s, g["text"]))
        if gold:
            sc = score(gold, pred)
            out[Path(f).name] = {"headlines": len(gold), "precision": round(sc.precision, 4),
                                 "recall": round(sc.recall, 4), "f1": round(sc.f1, 4)}
    return out


def _realign(silver_row: dict, text: str) -> list[Span]:
    """Silver spans moved onto a differently spaced copy of the same title (best effort: the
    same substring's first occurrence)."""
    out = []
    for e in silver_row["entities"]:
        i = text.find(e["text"])
        if i >= 0:
            out.append(Span(start=i, end=i + len(e["text"]), label=LABEL, text=e["text"]))
    return out


def read_tagged(path: str | Path) -> list[dict[str, Any]]:
    """A ``tickertag export`` of a ``ner`` run (one row per headline) or any JSONL with ``id``,
    ``text`` and ``entities``."""
    return read_plain_jsonl(path)


def write_silver(out_dir: Path, silver: list[dict], disagreements: list[dict],
                 meta: dict[str, Any]) -> None:
    write_jsonl(out_dir / "silver.jsonl", silver)
    write_jsonl(out_dir / "disagreements.jsonl", disagreements)
    (out_dir / "silver.json").write_text(json.dumps(meta, indent=2))


ProgressFn = Callable[[int, int], None]
