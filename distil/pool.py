"""The ``pool`` step: the source's distinct headlines minus every held-out title, built once per
(source, limit) and reused by a rerun."""

from __future__ import annotations

import json
from pathlib import Path

from distil.plan import DistilPlan, Say
from training.silver import build_pool, protected_texts


def make_pool(plan: DistilPlan, say: Say) -> Path:
    from producer.sources import iter_source

    out = plan.work_dir / "pool.jsonl"
    meta_path = plan.work_dir / "pool.json"
    key = {"source": str(plan.pool), "limit": plan.pool_limit}
    if out.exists() and meta_path.exists() and json.loads(meta_path.read_text()).get("key") == key:
        say(f"pool: {out} already built")
        return out
    rep = build_pool(iter_source(plan.pool), out, protected_texts(), plan.pool_limit)
    meta_path.write_text(json.dumps({"key": key, **rep.__dict__}, indent=2))
    say(f"pool: {rep.kept} distinct headlines from {rep.rows} rows of {plan.pool} -> {out} "
        f"({rep.protected} held-out test/valid titles excluded, {rep.duplicates} duplicates, "
        f"{rep.rejected} invalid)")
    return out
