"""Clustering benchmark: 10k / 50k / 100k distinct company strings -> clusters.

Names are real (entity texts of data/labeled, plus capitalised phrases of the shared FNSPID
titles) augmented with realistic variants (legal suffixes, case, typos, tickers). Reports
seconds and peak memory per size, and the pair-level precision/recall of the blocked candidate
search against exact all-pairs ``cdist`` on the 10k set.

Usage: python benchmarks/cluster.py [--sizes 10000 50000 100000]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from common.clustering import Mention, cluster_mentions, fuzzy_pairs, name_key  # noqa: E402
from common.settings import LABELED_DIR, SAMPLE_CSV  # noqa: E402

SUFFIX = ["Inc.", "Inc", "Corp", "Corporation", "Holdings", "Group", "Ltd", "plc", "Co."]
_CAPS = re.compile(r"\b(?:[A-Z][a-zA-Z&'.-]+)(?:\s+[A-Z][a-zA-Z&'.-]+){0,3}")


def seed_names() -> list[str]:
    names = set()
    for p in LABELED_DIR.glob("*.jsonl"):
        for line in open(p):
            names.update(e["text"] for e in json.loads(line)["entities"])
    shared = ROOT.parent / "shared" / "data" / "benzinga_headlines.csv"
    for path in (shared, SAMPLE_CSV):
        if path.exists():
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    names.update(m.group(0) for m in _CAPS.finditer(row["title"]))
    return sorted(names)


def variant(name: str, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.3:
        return f"{name} {rng.choice(SUFFIX)}"
    if r < 0.45:
        return name.upper() if rng.random() < 0.5 else name.lower()
    if r < 0.75 and len(name) > 4:
        i = rng.randrange(1, len(name) - 1)
        op = rng.random()
        if op < 0.33:
            return name[:i] + name[i + 1:]
        if op < 0.66:
            return name[:i] + rng.choice("aeioulnrst") + name[i:]
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    letters = "".join(w[0] for w in name.split() if w[:1].isalpha()).upper()
    return (letters or name[:3].upper()) + rng.choice(["", "X", "Q", "Z"])


def make_names(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    base = seed_names()
    out = set(base[:n])
    while len(out) < n:
        out.add(variant(rng.choice(base), rng))
    return sorted(out)[:n] if len(out) > n else sorted(out)


def measure(names: list[str]) -> tuple[float, float, int]:
    tracemalloc.start()
    t0 = time.perf_counter()
    cl = cluster_mentions(Mention(s) for s in names)
    secs = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return secs, peak, len(cl.members)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    a = ap.parse_args()
    console = Console()
    t = Table(title="clustering (threshold 85), 2 cores")
    for c in ("names", "seconds", "peak MiB (Python heap)", "clusters"):
        t.add_column(c, justify="right")
    for n in a.sizes:
        names = make_names(n)
        secs, peak, k = measure(names)
        t.add_row(f"{len(names):,}", f"{secs:.1f}", f"{peak:.0f}", f"{k:,}")
        console.print(f"{len(names)} names: {secs:.1f} s")
    console.print(t)
    names = make_names(min(a.sizes))
    keys = sorted({name_key(s) for s in names if len(name_key(s)) >= 4})
    t0 = time.perf_counter()
    exact = fuzzy_pairs(keys, 85, block=False)
    t_exact = time.perf_counter() - t0
    t0 = time.perf_counter()
    blocked = fuzzy_pairs(keys, 85, block=True)
    t_block = time.perf_counter() - t0
    tp = len(exact & blocked)
    prec = tp / len(blocked) if blocked else 1.0
    rec = tp / len(exact) if exact else 1.0
    console.print(f"pairs on {len(keys):,} keys: exact all-pairs {len(exact):,} in {t_exact:.1f} s, "
                  f"blocked {len(blocked):,} in {t_block:.1f} s: precision {prec:.4f}, "
                  f"recall {rec:.4f}")


if __name__ == "__main__":
    main()
