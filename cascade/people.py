"""Escalation to people: the headlines where the LLM's answer differs from every teacher.

Why those: where the LLM agrees with one teacher, two of three opinions coincide and the LLM's
answer is taken; where it agrees with none, three opinions differ and only a reviewer can say.
They go to Argilla like any review (``workers.review.argilla.push``): the LLM's spans as the
suggestion, each teacher's spans in the ``teacher_spans`` metadata, ``review_order`` by how much
the three disagree (most contested first), one dataset ``<prefix>-<escalation run>-people``.
``pull`` reads the submitted answers; they override the LLM on those headlines.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cascade.contested import Contested, span_keys
from common.jsonl import read_jsonl, write_jsonl
from common.progress import Tick

SPLIT = "people"


def _describe(ents: Sequence[dict[str, Any]]) -> str:
    return " | ".join(e["text"] for e in sorted(ents, key=lambda e: e["start"])) or "(none)"


def disagreement(llm: dict[str, Any], teachers: Sequence[Sequence[dict[str, Any]]]) -> int:
    """Spans some of the three sources predicted and others did not (0: all agree)."""
    sets = [span_keys(llm), *(frozenset((e["start"], e["end"]) for e in t) for t in teachers)]
    return len(frozenset().union(*sets) - frozenset.intersection(*sets))


def for_people(contested: Sequence[Contested], answers: dict[str, dict[str, Any]]
               ) -> list[dict[str, Any]]:
    """Review rows for the contested headlines whose LLM answer equals no teacher's answer."""
    rows = []
    for c in contested:
        llm = answers.get(c.row["id"])
        if llm is None:
            continue  # no LLM answer (dead letter, invalid, over budget): nothing to compare
        mine = span_keys(llm)
        if any(mine == frozenset((e["start"], e["end"]) for e in t) for t in c.teachers):
            continue
        rows.append({
            "id": c.row["id"], "text": c.row["text"], "date": c.row.get("date"),
            "stock_symbol": c.row.get("stock_symbol"),
            "entities": [{k: e[k] for k in ("start", "end", "label", "text")}
                         for e in llm.get("entities") or []],
            "model": llm.get("model"), "prompt_version": llm.get("prompt_version"),
            "disagree": True, "review_priority": disagreement(llm, c.teachers),
            "teacher_spans": [f"teacher {k + 1}: {_describe(t)}"
                              for k, t in enumerate(c.teachers)]})
    rows.sort(key=lambda r: (-r["review_priority"], r["id"]))
    return rows


def push_for_review(rows: list[dict[str, Any]], run: str, round_dir: Path,
                    tick: Tick | None = None) -> dict[str, Any]:
    """Write ``people.jsonl`` in the round and push it to Argilla (upserts: a rerun updates)."""
    from workers.review.argilla import push

    src = round_dir / "review"
    write_jsonl(src / f"{SPLIT}.jsonl", rows)
    rep = push(run, input_dir=src, splits=(SPLIT,), progress=tick)
    return rep["splits"][SPLIT]


def pull_reviews(run: str, round_dir: Path, tick: Tick | None = None) -> dict[str, Any]:
    """Submitted answers so far -> ``reviewed/people.jsonl`` in the round; returns the report."""
    from workers.review.argilla import pull

    rep = pull(run, out_dir=round_dir / "reviewed", splits=(SPLIT,), progress=tick)
    return rep["splits"][SPLIT]


def reviewed_answers(round_dir: Path) -> dict[str, dict[str, Any]]:
    path = round_dir / "reviewed" / f"{SPLIT}.jsonl"
    return {r["id"]: r for r in read_jsonl(path)} if path.exists() else {}
