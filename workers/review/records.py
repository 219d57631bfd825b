"""What a review record is: the Argilla dataset settings, one record per curated headline
(most doubtful first, with the reasons), and what reviewers' answers resolve to
(the majority answer, pairwise agreement)."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.metrics import score
from common.paths import LABELED_DIR
from common.spans import LABEL, Span, check_spans

if TYPE_CHECKING:  # the SDK is imported lazily: it is slow to import and only this stage needs it
    import argilla as rg

log = logging.getLogger(__name__)

FIELD = "text"
QUESTION = "span_label"
SPLITS = ("train", "valid", "test")
GUIDELINES_PATH = LABELED_DIR / "LABELING.md"

# Why a record is worth a reviewer's time first, with its weight in ``priority``.
REASON_WEIGHTS = {
    "invalid": 8,  # the LLM's answer did not parse / validate: its spans mean nothing
    "hallucinated": 4,  # it named companies that are not in the headline
    "disagree": 2,  # another source (the provider's ticker, a second annotator) disagrees
    "warning": 1,  # the answer was repaired on the way in (e.g. list lengths differed)
}


# -- records ---------------------------------------------------------------------------------


def guidelines(path: Path = GUIDELINES_PATH) -> str:
    """The project's labeling rules, shown to reviewers beside every record."""
    return path.read_text(encoding="utf-8")


# Argilla's server shows each user the pending records in its own seeded random order
# (``random_score`` in its search engine) whatever order they were logged in, and its UI sorts
# ascending by default; so the review order travels as a rank (1 = look first) that the default
# sort direction puts first, and the guidelines every reviewer sees open by saying how to use it.
ORDER_NOTE = ("**Doubtful records first:** in the dataset, choose *Sort* → *Review order (1 = "
              "look first)*, ascending. Records the LLM got wrong or repaired come first.\n\n")


def build_settings(guidelines_text: str, min_submitted: int = 1) -> rg.Settings:
    """The case study's task plus the metadata a reviewer filters and sorts by."""
    import argilla as rg

    return rg.Settings(
        guidelines=ORDER_NOTE + guidelines_text,
        fields=[rg.TextField(name=FIELD, title="Headline", use_markdown=False)],
        questions=[rg.SpanQuestion(
            name=QUESTION, field=FIELD, labels=[LABEL], allow_overlapping=False,
            title="Mark every company name or ticker (see the guidelines).")],
        metadata=[
            rg.IntegerMetadataProperty(name="review_order", title="Review order (1 = look first)"),
            rg.IntegerMetadataProperty(name="priority", title="Review priority (high first)"),
            rg.TermsMetadataProperty(name="review_reason", title="Why review first"),
            rg.TermsMetadataProperty(name="date", title="Date"),
            rg.IntegerMetadataProperty(name="year", title="Year"),
            rg.TermsMetadataProperty(name="stock_symbol", title="Stock symbol"),
            rg.TermsMetadataProperty(name="cluster", title="Company cluster"),
            # the cascade's escalations: what each compact teacher answered, beside the LLM's
            # suggestion, so a reviewer sees the three opinions at once
            rg.TermsMetadataProperty(name="teacher_spans", title="Teachers' spans"),
        ],
        distribution=rg.TaskDistribution(min_submitted=min_submitted),
    )


def _symbol_missed(row: dict[str, Any], spans: Sequence[Span]) -> bool:
    """The data provider's ticker is written in the headline but no LLM span covers it."""
    sym = (row.get("stock_symbol") or "").strip()
    if len(sym) < 2:  # "A" is a ticker and an article; too ambiguous to call a disagreement
        return False
    text = row["text"]
    for m in re.finditer(rf"(?<![A-Za-z0-9]){re.escape(sym)}(?![A-Za-z0-9])", text):
        if not any(s.start <= m.start() and m.end() <= s.end for s in spans):
            return True
    return False


def review_reasons(row: dict[str, Any], spans: Sequence[Span]) -> list[str]:
    """Why this row deserves an early look (empty: the sources agree and the answer was clean)."""
    reasons = []
    if row.get("valid") is False:
        reasons.append("invalid")
    if row.get("hallucinated"):
        reasons.append("hallucinated")
    if row.get("disagree") or _symbol_missed(row, spans):
        reasons.append("disagree")
    if row.get("warning"):
        reasons.append("warning")
    return reasons


def _entity_spans(row: dict[str, Any]) -> list[Span]:
    return sorted(check_spans(row["text"], [
        {k: e[k] for k in ("start", "end", "label", "text", "score") if k in e}
        for e in row.get("entities") or []]), key=lambda s: s.start)


def _agent(row: dict[str, Any]) -> str:
    parts = [str(row[k]) for k in ("model", "prompt_version") if row.get(k)]
    return ":".join(parts) or "llm"


def _clusters(row: dict[str, Any]) -> list[str]:
    if row.get("cluster"):
        return [str(row["cluster"])]
    return [str(c) for c in row.get("clusters") or []]


def build_record(row: dict[str, Any]) -> tuple[rg.Record, int]:
    """One curated row as an Argilla record, and its priority. Raises ValueError on bad spans."""
    import argilla as rg

    spans = _entity_spans(row)
    reasons = review_reasons(row, spans)
    # a row may carry its own priority (the cascade ranks by how much its sources disagree)
    priority = (int(row["review_priority"]) if row.get("review_priority") is not None
                else sum(REASON_WEIGHTS[r] for r in reasons))
    date = row.get("date") or ""
    metadata: dict[str, Any] = {"priority": priority, "review_reason": reasons or ["none"]}
    if date:
        metadata["date"] = date
        if date[:4].isdigit():
            metadata["year"] = int(date[:4])
    if row.get("stock_symbol"):
        metadata["stock_symbol"] = row["stock_symbol"]
    if clusters := _clusters(row):
        metadata["cluster"] = clusters
    if row.get("teacher_spans"):
        metadata["teacher_spans"] = [str(t) for t in row["teacher_spans"]]
    suggestions = []
    if row.get("valid") is not False:  # an invalid answer has nothing to suggest, not "no company"
        value = [{"start": s.start, "end": s.end, "label": s.label} for s in spans]
        scores = [s.score for s in spans]
        suggestions.append(rg.Suggestion(
            question_name=QUESTION, value=value, agent=_agent(row), type="model",
            score=scores if spans and all(x is not None for x in scores) else None))
    record = rg.Record(id=str(row["id"]), fields={FIELD: row["text"]}, metadata=metadata,
                       suggestions=suggestions)
    return record, priority


def build_records(rows: Iterable[dict[str, Any]]) -> tuple[list[rg.Record], list[str]]:
    """Records ordered for review (priority desc, then date, then id), each with that position
    as its ``review_order`` metadata (1 = first), and ids left out.

    The last row of an id wins, so a file with repeated ids still makes one record each.
    """
    built: dict[str, tuple[rg.Record, int, str]] = {}
    rejected = []
    for row in rows:
        try:
            rec, prio = build_record(row)
        except (ValueError, KeyError) as e:
            log.warning("left out %s: %s", row.get("id"), e)
            rejected.append(str(row.get("id")))
            continue
        built[str(row["id"])] = (rec, prio, row.get("date") or "")
    order = sorted(built.items(), key=lambda kv: (-kv[1][1], kv[1][2], kv[0]))
    records = [rec for _, (rec, _, _) in order]
    for i, rec in enumerate(records, 1):
        rec.metadata["review_order"] = i
    return records, rejected


# -- answers --------------------------------------------------------------------------------


def _value_spans(text: str, value: Any) -> list[Span]:
    """A span answer from Argilla as checked character spans (text filled in from the record)."""
    spans = [Span(start=int(v["start"]), end=int(v["end"]), label=str(v.get("label") or LABEL),
                  text=text[int(v["start"]):int(v["end"])]) for v in value or []]
    return sorted(check_spans(text, spans), key=lambda s: s.start)


def _key(spans: Sequence[Span]) -> tuple[tuple[int, int, str], ...]:
    return tuple(sorted(s.key() for s in spans))


def resolve(answers: Sequence[list[Span]]) -> tuple[list[Span], bool]:
    """One reviewed answer from several reviewers' submitted ones, and whether they all agreed.

    The most common answer wins; a tie goes to the earliest in the server's order (the SDK
    exposes no response timestamps). Rows where reviewers disagree are flagged
    (``reviewers_agree: false``) so they can be adjudicated rather than silently trusted.
    """
    counts = Counter(_key(sp) for sp in answers)
    best = max(counts.values())
    chosen = next(sp for sp in answers if counts[_key(sp)] == best)
    return chosen, len(counts) == 1


def record_review(rec: rg.Record) -> dict[str, Any]:
    """What one Argilla record says: status, submitted answers, the LLM's suggestion."""
    text = rec.fields[FIELD]
    submitted: list[list[Span]] = []
    reviewers: list[str] = []
    discarded = 0
    for resp in rec.responses:
        if resp.question_name != QUESTION:
            continue
        status = str(getattr(resp.status, "value", resp.status))
        if status == "submitted":
            submitted.append(_value_spans(text, resp.value))
            reviewers.append(str(resp.user_id))
        elif status == "discarded":
            discarded += 1
    llm = None
    for sug in rec.suggestions:
        if sug.question_name == QUESTION:
            llm = _value_spans(text, sug.value)
    return {"text": text, "submitted": submitted, "reviewers": reviewers,
            "discarded": discarded, "llm": llm}


def pairwise_agreement(answers: list[list[list[Span]]]) -> dict[str, Any]:
    """Agreement over records that two or more reviewers submitted: exact-match rate and the
    micro F1 of every reviewer pair (F1 is symmetric, so the pair's order does not matter)."""
    gold, pred = [], []
    exact = 0
    for per_record in answers:
        exact += len({_key(sp) for sp in per_record}) == 1
        for a, b in combinations(per_record, 2):
            gold.append(a)
            pred.append(b)
    out: dict[str, Any] = {"records": len(answers), "exact": exact,
                           "exact_rate": round(exact / len(answers), 4) if answers else None}
    out["pairwise_f1"] = round(score(gold, pred).f1, 4) if gold else None
    return out


