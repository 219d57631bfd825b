"""A round's labels: the teachers' vote where they agree, the LLM where it was asked, people
where they answered. One row per pool headline, with where its label came from.

Precedence, per headline: a reviewer's submitted answer, else a valid LLM answer, else the
teachers' vote. A contested headline nobody above answered (over the budget, a dead letter, an
invalid answer, a review still pending with no LLM answer) keeps ``agreement < 1``, so the
student's agreement filter leaves it out as ``distil`` always did.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from common.spans import LABEL


def _entities(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"start": e["start"], "end": e["end"], "label": e.get("label") or LABEL,
             "text": e["text"]} for e in row.get("entities") or []]


def resolve_labels(silver: list[dict[str, Any]], llm: dict[str, dict[str, Any]],
                   people: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], Counter]:
    """The round's silver rows and how many labels came from each source."""
    out, sources = [], Counter()
    for row in silver:
        hid = row["id"]
        answer, source = (people.get(hid), "people") if hid in people else (llm.get(hid), "llm")
        if answer is None:
            source = "teachers" if row.get("agreement", 1.0) >= 1.0 else "contested"
            out.append({**row, "label_source": source})
        else:
            out.append({**row, "entities": _entities(answer), "agreement": 1.0,
                        "label_source": source})
        sources[source] += 1
    return out, sources


def escalated_labels(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The labels the LLM and people gave: what the next round's teachers train on."""
    return [{k: r.get(k) for k in ("id", "text", "date", "stock_symbol", "entities",
                                   "label_source")}
            for r in rows if r.get("label_source") in ("llm", "people")]
