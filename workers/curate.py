"""The ``curate`` queue: an annotated run -> clusters -> review sample -> year splits -> export.

Started once when an annotation run completes (``producer.produce.maybe_finalize``) or by
``tickertag curate RUN``. Only valid answers are curated; the output goes to
``<results>/<run>/curated/``, with a cluster report to judge the threshold by.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from common.celery_app import app
from common.clustering import Clustering, Mention, cluster_mentions
from common.export import export_splits
from common.sampling import SampleOptions, sample_headlines, split_rows
from common.settings import Settings, get_settings
from common.store import ResultStore


def cluster_report(cl: Clustering, top: int = 25) -> str:
    """Markdown: how many clusters, the largest, and which different names were merged."""
    sizes = cl.sizes()
    lines = [f"# Cluster report\n\n{len(sizes)} clusters over {sum(n for _, n in sizes)} "
             f"mentions; {sum(1 for c, _ in sizes if len(cl.members[c]) > 1)} clusters merge "
             "more than one surface form.\n", "## Largest clusters\n",
             "| cluster | representative | mentions | surface forms |", "|---|---|---:|---|"]
    for cid, n in sizes[:top]:
        forms = ", ".join(f"{s} ({c})" for s, c in cl.members[cid].most_common(6))
        lines.append(f"| {cid} | {cl.representative[cid]} | {n} | {forms} |")
    merged = [(c, m) for c, m in cl.members.items() if len(m) > 1]
    lines += ["\n## Examples of merged names\n"]
    for cid, m in sorted(merged, key=lambda x: -sum(x[1].values()))[:top]:
        lines.append(f"- **{cl.representative[cid]}**: " + ", ".join(sorted(m)))
    return "\n".join(lines) + "\n"


def curate_rows(rows: list[dict[str, Any]], opts: SampleOptions
                ) -> tuple[dict[str, list[dict]], Clustering, dict[str, Any]]:
    """Plain function behind the task: cluster, sample, split (no I/O)."""
    valid = [r for r in rows if r.get("valid", True)]
    mentions = []
    for r in valid:
        norms = r.get("normalized") or []
        for i, e in enumerate(r["entities"]):
            comp = r.get("companies") or []
            norm = None
            if e["text"] in comp:
                j = comp.index(e["text"])
                norm = norms[j] if j < len(norms) else None
            mentions.append(Mention(e["text"], norm, r.get("stock_symbol")))
            e.setdefault("_i", i)
    cl = cluster_mentions(mentions, opts.threshold)
    clusters_of: dict[str, set[str]] = defaultdict(set)
    empty = []
    for r in valid:
        cids = sorted({cl.cluster_of[e["text"]] for e in r["entities"]})
        r["clusters"] = cids
        for e in r["entities"]:
            e.pop("_i", None)
        if cids:
            for c in cids:
                clusters_of[c].add(r["id"])
        else:
            empty.append(r["id"])
    chosen = sample_headlines(clusters_of, empty, opts.company_fraction, opts.empty_fraction,
                              opts.seed)
    sample = [r for r in valid if r["id"] in chosen]
    splits, outside = split_rows(sample, opts.splits)
    stats = {"results": len(rows), "valid": len(valid), "mentions": len(mentions),
             "clusters": len(cl.members), "sampled": len(sample), "outside_splits": outside,
             "with_company": len(valid) - len(empty)}
    return splits, cl, stats


def curate_run(run_id: str, opts: SampleOptions, settings: Settings) -> dict[str, Any]:
    t0 = time.time()
    store = ResultStore(settings.results_dir, run_id)
    latest: dict[str, dict] = {}
    for r in store.iter_results():
        latest[r["id"]] = r  # one row per headline, whatever the redeliveries
    splits, cl, stats = curate_rows(list(latest.values()), opts)
    out = Path(store.url) / "curated"
    counts = export_splits(splits, out)
    (out / "cluster_report.md").write_text(cluster_report(cl))
    return {"run_id": run_id, "output": str(out), **stats, "splits": counts,
            "seconds": round(time.time() - t0, 2),
            "largest": [(cl.representative[c], n) for c, n in cl.sizes()[:10]]}


@app.task(name="tickertag.curate.run")
def curate_task(run_id: str, options: dict | None = None) -> dict[str, Any]:
    """Celery entry point (JSON arguments)."""
    return curate_run(run_id, SampleOptions(**(options or {})), get_settings())
