"""Human review in Argilla: curated splits -> Argilla datasets -> reviewed JSONL.

``push`` creates (or updates) one dataset per split with the case study's task: a ``text``
field and a ``span_label`` SpanQuestion (label Company, no overlap), ``LABELING.md`` as the
guidelines, the LLM's spans as suggestions. Record ids are the headline ids, so pushing again
updates records in place (Argilla upserts on the record id) and never duplicates them, and
responses already given survive. Records are logged most-doubtful first and carry a
``priority`` metadata property, because Argilla's default order is insertion order and a
reviewer with one hour should spend it where the LLM is least trustworthy.

``pull`` reads the submitted responses (review may still be under way), turns them into
character spans checked by ``check_spans``, and writes ``<results>/<run>/reviewed/{split}.jsonl``
in the curated row format (``entities`` are the reviewed spans), which training reads. It also
returns progress and agreement: between reviewers, and between the LLM and the review, both
scored with ``common.metrics.score``.

What a record holds and how answers resolve lives in ``workers.review.records``; connecting to
Argilla and starting a local server in ``workers.review.server``.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.folder import Folder
from common.metrics import score
from common.progress import Tick, no_tick
from common.settings import get_settings
from common.spans import Span
from workers.review.argilla_settings import ArgillaSettings
from workers.review.records import (
    FIELD,
    GUIDELINES_PATH,
    QUESTION,
    SPLITS,
    build_records,
    build_settings,
    guidelines,
    pairwise_agreement,
    record_review,
    resolve,
)
from workers.review.server import ReviewError, connect, dataset_name, workspace_of

if TYPE_CHECKING:  # the SDK is imported lazily: it is slow to import and only this stage needs it
    import argilla as rg

log = logging.getLogger(__name__)
PULL_TICK_EVERY = 50  # records between two pull progress reports


# -- push ------------------------------------------------------------------------------------


def run_folder(run: str, stage: str, where: str | Path | None = None) -> Folder:
    """``where`` (a local folder or fsspec URL) if given, else the run's ``curated`` or
    ``reviewed`` stage in its result store, wherever the results root is."""
    if where:
        return Folder.at(where)
    from common.run import Run

    return Run(run, get_settings()).stage(stage)


def write_reviewed(out: Folder, split: str, rows: list[dict[str, Any]]) -> str:
    """``{split}.jsonl`` of reviewed rows in ``out``; returns its name for the report."""
    out.write_jsonl(f"{split}.jsonl", rows)
    return out.name_of(f"{split}.jsonl")


def find_dataset(client: rg.Argilla, name: str, workspace: str) -> rg.Dataset | None:
    """The dataset or None (the SDK also warns on a miss; here a miss is an ordinary answer)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return client.datasets(name=name, workspace=workspace)


def _ensure_dataset(client: rg.Argilla, name: str, workspace: str, settings: rg.Settings
                    ) -> tuple[rg.Dataset, bool]:
    """The existing dataset (guidelines refreshed) or a new one; True when it was created."""
    import argilla as rg

    ds = find_dataset(client, name, workspace)
    if ds is None:
        return rg.Dataset(name=name, workspace=workspace, settings=settings, client=client
                          ).create(), True
    questions = {q.name: q for q in ds.settings.questions}
    if QUESTION not in questions or FIELD not in {f.name for f in ds.settings.fields}:
        raise ReviewError(f"dataset {workspace}/{name} exists with another task; "
                          "delete it or use another TICKERTAG_ARGILLA_DATASET_PREFIX")
    if ds.settings.guidelines != settings.guidelines:
        ds.settings.guidelines = settings.guidelines
        ds.update()
    return ds, False


def push(run: str, input_dir: str | Path | None = None, splits: Sequence[str] = SPLITS,
         settings: ArgillaSettings | None = None, client: rg.Argilla | None = None,
         guidelines_path: Path = GUIDELINES_PATH, progress: Tick | None = None
         ) -> dict[str, Any]:
    """Create or update ``<prefix>-<run>-<split>`` for each split file found; return the report.

    ``input_dir`` (a folder or fsspec URL) defaults to the curated output of ``run`` in its
    result store. A missing split file is skipped
    (reported), a missing directory is an error. ``progress("push <split>", records logged,
    records)`` before the first and after each batch of ``settings.batch_size`` records.
    """
    s = settings or ArgillaSettings()
    tick = progress or no_tick
    src = run_folder(run, "curated", input_dir)
    if not src.is_dir():
        raise ReviewError(f"no curated splits at {src.url}: run `tickertag curate {run}` or "
                          "pass --input-dir")
    client = client or connect(s)
    ws = workspace_of(client, s)
    rg_settings = build_settings(guidelines(guidelines_path), s.min_submitted)
    report: dict[str, Any] = {"run": run, "input_dir": src.url, "workspace": ws, "splits": {}}
    t_all = time.perf_counter()
    for split in splits:
        name = f"{split}.jsonl"
        if not src.exists(name):
            report["splits"][split] = {"skipped": f"{src.name_of(name)} not found"}
            continue
        t0 = time.perf_counter()
        records, rejected = build_records(src.read_jsonl(name))
        name = dataset_name(run, split, s)
        ds, created = _ensure_dataset(client, name, ws, rg_settings)
        if records:
            # batch by batch (what ``log`` does inside with ``batch_size``), to report each
            step = max(1, min(s.batch_size, len(records)))
            tick(f"push {split}", 0, len(records))
            for i in range(0, len(records), step):
                batch = records[i:i + step]
                ds.records.log(batch, batch_size=len(batch))
                tick(f"push {split}", i + len(batch), len(records))
        report["splits"][split] = {
            "dataset": name, "created": created, "records": len(records),
            "rejected": rejected, "priority": sum(1 for r in records if r.metadata["priority"]),
            "seconds": round(time.perf_counter() - t0, 2)}
    report["seconds"] = round(time.perf_counter() - t_all, 2)
    return report


# -- pull ------------------------------------------------------------------------------------


def _iter_records(ds: rg.Dataset) -> Iterator[rg.Record]:
    return iter(ds.records(with_suggestions=True, with_responses=True))


def pull_split(ds: rg.Dataset, out: Folder | None, split: str, progress: Tick | None = None,
               what: str = "pull") -> dict[str, Any]:
    """Progress and agreement of one dataset; reviewed rows written to ``{split}.jsonl`` in
    ``out`` (``write_reviewed``).
    ``progress(what, records read, None)`` at the start and every ``PULL_TICK_EVERY`` records,
    and ``(what, n, n)`` at the end."""
    rows: list[dict[str, Any]] = []
    counts = Counter()
    multi: list[list[list[Span]]] = []
    llm_gold, llm_pred, invalid = [], [], []
    tick = progress or no_tick
    tick(what, 0, None)
    for rec in _iter_records(ds):
        counts["total"] += 1
        if counts["total"] % PULL_TICK_EVERY == 0:
            tick(what, counts["total"], None)
        try:
            r = record_review(rec)
        except ValueError as e:  # a span that does not fit its text: report, never train on it
            invalid.append(f"{rec.id}: {e}")
            continue
        if not r["submitted"]:
            counts["discarded" if r["discarded"] else "pending"] += 1
            continue
        counts["submitted"] += 1
        spans, agreed = resolve(r["submitted"])
        if len(r["submitted"]) > 1:
            multi.append(r["submitted"])
        if r["llm"] is not None:
            llm_gold.append(spans)
            llm_pred.append(r["llm"])
        md = dict(rec.metadata or {})
        row = {"id": str(rec.id), "text": r["text"], "date": md.get("date"),
               "stock_symbol": md.get("stock_symbol"),
               "entities": [s.model_dump(exclude={"score"}) for s in spans],
               "reviewers": len(r["submitted"]), "reviewers_agree": agreed,
               "llm_entities": ([s.model_dump(exclude={"score"}) for s in r["llm"]]
                                if r["llm"] is not None else None)}
        if md.get("cluster"):
            row["clusters"] = md["cluster"] if isinstance(md["cluster"], list) else [md["cluster"]]
        rows.append(row)
    tick(what, counts["total"], counts["total"])
    rows.sort(key=lambda r: (r.get("date") or "", r["id"]))
    written = write_reviewed(out, split, rows) if out is not None else None
    llm = score(llm_gold, llm_pred) if llm_gold else None
    return {
        "dataset": ds.name, "records": counts["total"], "submitted": counts["submitted"],
        "pending": counts["pending"], "discarded": counts["discarded"],
        "invalid_responses": invalid, "reviewers_agreement": pairwise_agreement(multi),
        "llm_vs_reviewed": llm.as_dict() if llm else None,
        "output": written,
    }


def pull(run: str, out_dir: str | Path | None = None, splits: Sequence[str] = SPLITS,
         settings: ArgillaSettings | None = None, client: rg.Argilla | None = None,
         write: bool = True, progress: Tick | None = None) -> dict[str, Any]:
    """Pull every split's submitted reviews; ``write=False`` only reports progress.
    ``progress("pull <split>", records read, total or None)`` while each split is read."""
    s = settings or ArgillaSettings()
    client = client or connect(s)
    ws = workspace_of(client, s)
    out = run_folder(run, "reviewed", out_dir)
    report: dict[str, Any] = {"run": run, "workspace": ws, "splits": {}}
    t0 = time.perf_counter()
    for split in splits:
        name = dataset_name(run, split, s)
        ds = find_dataset(client, name, ws)
        if ds is None:
            report["splits"][split] = {"dataset": name, "missing": True}
            continue
        report["splits"][split] = pull_split(ds, out if write else None, split, progress,
                                             f"pull {split}")
    report["seconds"] = round(time.perf_counter() - t0, 2)
    if write:
        out.write_text("progress.json", json.dumps(report, indent=1))
    return report

