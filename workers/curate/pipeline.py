"""The ``curate`` queue: an annotated run -> clusters -> review sample -> year splits -> export.

Started once when an annotation run completes (``common.run.Run.maybe_finalize``) or by
``tickertag curate RUN``. Only valid answers are curated. The run is read twice rather than
held in memory: the first pass keeps a few facts per headline (date, mentions), enough to
cluster and sample; the second pass fetches the full rows of the sampled headlines only.
Output goes to ``<results>/<run>/curated/``: the splits, a cluster report to judge the
threshold by (``cluster_report.md``), every surface form's cluster (``clusters.jsonl``) and
the run's numbers (``report.json``).

A run that would leave every split empty (no results, only invalid answers, no dates, no date
in any split, no company in any headline of the splits, no span that fits its text) raises
``EmptyCuration`` naming the cause, before any split file is written: empty train/valid/test
files would pass for a finished curation and train a model on nothing. The cause is also
written to ``curated/error.json``, where the auto-curation task's failure can be read later.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from common.clustering import Clustering, Mention, cluster_mentions
from common.folder import Folder
from common.run import Run
from common.settings import Settings, get_settings
from common.spans import clean_mention
from common.store import ResultStore
from workers.curate.export import convert_splits, write_splits
from workers.curate.sampling import (
    EmptyCuration,
    SampleOptions,
    day_of,
    empty_curation,
    resolve_splits,
    sample_headlines,
    split_of,
    split_rows,
)

T = TypeVar("T")
Track = Callable[[Iterable[T], str], Iterable[T]]


def _no_track(it: Iterable[T], _desc: str) -> Iterable[T]:
    return it


ERROR_FILE = "error.json"  # in curated/: why the last curation of the run wrote nothing


@dataclass(frozen=True, slots=True)
class Facts:
    """What pass one keeps of a headline: enough to cluster and sample, a few dozen bytes."""

    day: str | None  # YYYY-MM-DD: the split is decided once the run's dates are known
    mentions: tuple[tuple[str, str | None], ...]  # (span text, normalized name)
    stock_symbol: str | None


def mentions_of(row: dict[str, Any]) -> tuple[tuple[str, str | None], ...]:
    """Each entity's text with the LLM's normalized name for it. Spans were aligned from the
    raw ``companies`` strings (stripped, maybe case-insensitively), so match them that way."""
    comp = [clean_mention(str(c)).casefold() for c in row.get("companies") or []]
    norms = row.get("normalized") or []
    out = []
    for e in row["entities"]:
        j = comp.index(e["text"].casefold()) if e["text"].casefold() in comp else -1
        out.append((e["text"], norms[j] if 0 <= j < len(norms) and norms[j] else None))
    return tuple(out)


def latest_rows(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Valid rows, the last one per headline id (a requeued batch may repeat a headline).

    Each row leaves the dict as it is yielded, so a caller that builds a new row from it (the
    labelled sample) does not hold the run's sampled rows twice."""
    last: dict[str, dict[str, Any]] = {}
    for r in rows:
        last[r["id"]] = r
    for hid in list(last):
        r = last.pop(hid)
        if r.get("valid", True):
            yield r


def index_rows(rows: Iterable[dict[str, Any]]) -> dict[str, Facts]:
    """Pass one: headline id -> Facts for valid rows (the last row per id wins)."""
    facts: dict[str, Facts] = {}
    for r in rows:
        if not r.get("valid", True):
            facts.pop(r["id"], None)
            continue
        facts[r["id"]] = Facts(day_of(r.get("date")), mentions_of(r),
                               r.get("stock_symbol"))
    return facts


def plan_sample(facts: dict[str, Facts], opts: SampleOptions
                ) -> tuple[Clustering, set[str], dict[str, Any]]:
    """Cluster every mention, then choose the headlines to review (no I/O); ``opts.splits``
    must be resolved (``resolve_splits``)."""
    assert opts.splits is not None, "resolve the splits first"
    split = {hid: split_of(f.day, opts.splits) for hid, f in facts.items()}
    cl = cluster_mentions((Mention(t, n, f.stock_symbol) for f in facts.values()
                           for t, n in f.mentions), opts.threshold,
                          join_normalized=opts.join_normalized)
    clusters_of: dict[str, set[str]] = defaultdict(set)
    empty: list[str] = []
    for hid, f in facts.items():
        if split[hid] is None:
            continue  # outside every split: never reviewed, so never a candidate
        cids = {cl.cluster_of[t] for t, _ in f.mentions}
        for c in cids:
            clusters_of[c].add(hid)
        if not cids:
            empty.append(hid)
    chosen = sample_headlines(clusters_of, empty, opts.company_fraction, opts.empty_fraction,
                              opts.seed)
    stats = {"valid": len(facts), "mentions": sum(len(f.mentions) for f in facts.values()),
             "with_company": sum(1 for f in facts.values() if f.mentions),
             "clusters": len(cl.members), "clusters_in_splits": len(clusters_of),
             "outside_splits": sum(1 for s in split.values() if s is None),
             "sampled": len(chosen)}
    return cl, chosen, stats


def record_failure(out: Folder, run_id: str, e: EmptyCuration) -> None:
    """``curated/error.json``: the cause where the run's curated files would be, so a failed
    auto-curation (a queue task nobody watches) is still visible next to the run's data."""
    out.write_text(ERROR_FILE, json.dumps(
        {"run_id": run_id, "cause": e.cause, "error": e.message, "failed_at": time.time()},
        ensure_ascii=False) + "\n")


def label_row(row: dict[str, Any], cl: Clustering) -> dict[str, Any]:
    """The row with each entity's cluster and representative, and the row's cluster ids."""
    ents = [{**e, "cluster": cl.cluster_of[e["text"]],
             "representative": cl.representative[cl.cluster_of[e["text"]]]}
            for e in row["entities"]]
    return {**row, "entities": ents, "clusters": sorted({e["cluster"] for e in ents})}


def cluster_report(cl: Clustering, top: int = 25) -> str:
    """Markdown: how many clusters, the largest, and which different names were merged."""
    sizes = cl.sizes()
    merged = cl.merged()
    lines = [f"# Cluster report\n\n{len(sizes)} clusters over {sum(n for _, n in sizes)} "
             f"mentions; {len(merged)} clusters merge more than one surface form.\n",
             "## Largest clusters\n",
             "| cluster | representative | mentions | surface forms |", "|---|---|---:|---|"]
    for cid, n in sizes[:top]:
        forms = ", ".join(f"{s} ({c})" for s, c in cl.members[cid].most_common(6) if c)
        lines.append(f"| {cid} | {cl.representative[cid]} | {n} | {forms} |")
    lines += ["\n## Examples of merged names\n"]
    for cid, forms in merged[:top]:
        lines.append(f"- **{cl.representative[cid]}**: " + ", ".join(forms))
    return "\n".join(lines) + "\n"


def write_clusters(cl: Clustering, path: Path) -> None:
    """One line per cluster: id, representative, mentions and surface forms with counts."""
    with open(path, "w", encoding="utf-8") as f:
        for cid, n in cl.sizes():
            f.write(json.dumps({"cluster": cid, "representative": cl.representative[cid],
                                "mentions": n, "forms": dict(cl.members[cid].most_common())},
                               ensure_ascii=False) + "\n")


def curate_run(run_id: str, options: SampleOptions | dict[str, Any] | None = None,
               settings: Settings | None = None, track: Track | None = None) -> dict[str, Any]:
    """Curate one stored run and return its report (also written to ``report.json``).

    ``track`` wraps the two passes over the results (the CLI passes a progress bar). Raises
    ``EmptyCuration`` (recorded in ``curated/error.json``) when every split would be empty.
    """
    opts = options if isinstance(options, SampleOptions) else SampleOptions(**(options or {}))
    settings = settings or get_settings()
    store = Run(run_id, settings).store
    out = store.stage("curated")
    try:
        report = _curate(store, opts, settings, track or _no_track)
    except EmptyCuration as e:
        record_failure(out, run_id, e)
        raise
    out.remove(ERROR_FILE)
    return report


def _curate(store: ResultStore, opts: SampleOptions, settings: Settings, track: Track
            ) -> dict[str, Any]:
    """``curate_run`` without the failure record: pass one, checks, sample, pass two, export."""
    t0 = time.time()
    run_id = store.run_id
    n_results = 0
    invalid: Counter[str] = Counter()

    def counted(it: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        nonlocal n_results
        for r in it:
            n_results += 1
            if r.get("valid") is False:
                invalid[str(r.get("invalid_reason") or "none recorded")] += 1
            yield r

    facts = index_rows(counted(track(store.iter_results(), "reading results")))
    ranges, source = resolve_splits(opts.splits, settings.curate_splits,
                                    Counter(f.day for f in facts.values() if f.day))
    problem = empty_curation(run_id, n_results, invalid,
                             ((f.day, bool(f.mentions)) for f in facts.values()), ranges, source)
    if problem is not None:
        raise problem
    opts = opts.model_copy(update={"splits": ranges})
    cl, chosen, stats = plan_sample(facts, opts)
    del facts
    sample = [label_row(r, cl) for r in latest_rows(
        r for r in track(store.iter_results(), "fetching the sample") if r["id"] in chosen)]
    splits, _ = split_rows(sample, opts.splits)
    conv = convert_splits(splits)
    if conv.kept == 0:
        raise EmptyCuration(
            f"all {len(conv.invalid_spans)} sampled headlines of run {run_id} have entity spans "
            "that do not fit their text, so every split would be empty: check `entities` "
            "(start, end, text) in the run's results", "invalid_spans")
    folder = store.stage("curated")
    with folder.local_dir() as out:  # the splits' writers (datasets among them) take a path
        exported = write_splits(conv, out)
        (out / "cluster_report.md").write_text(cluster_report(cl), encoding="utf-8")
        write_clusters(cl, out / "clusters.jsonl")
        report = {"run_id": run_id, "output": folder.url, "options": opts.model_dump(),
                  "splits_source": source,
                  "results": n_results, **stats, **exported,
                  "seconds": round(time.time() - t0, 2),
                  "largest": [(cl.representative[c], n) for c, n in cl.sizes()[:10]],
                  "merged_examples": [(cl.representative[c], forms[:6])
                                      for c, forms in cl.merged()[:10]]}
        (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    return report


def link_run(run_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """The run's alias table (``runs/<run>/aliases.json``) from its results and the labelled
    training files: what ``tickertag predict/serve --aliases`` and the ner workers link with."""
    from linking.build import build_run_table

    store = Run(run_id, settings or get_settings()).store
    root = store.run_folder()
    with root.local_dir() as d:  # a remote store gets the file when the block ends
        rep = build_run_table(store.iter_results(), d / "aliases.json")
    return {**rep, "output": root.name_of("aliases.json")}
