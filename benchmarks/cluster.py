"""Clustering benchmark: 10k / 50k / 100k distinct company strings -> clusters.

Names are real: entity texts of data/labeled, company-like capitalised phrases of the shared
FNSPID titles (cut at headline verbs such as "Downgrades" or "Shares") and their source stock
symbols, augmented with realistic variants (legal suffixes, case, typos, initials). Each size
runs in its own process, so its peak resident memory is its own. Also reports the pair-level
precision/recall of the blocked candidate search against exact all-pairs ``cdist`` on the
10k set, and writes the table to benchmarks/RESULTS_cluster.md.

Usage: python benchmarks/cluster.py [--sizes 10000 50000 100000] [--no-write]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.progress import track  # noqa: E402
from rich.table import Table  # noqa: E402

from common.clustering import Mention, cluster_mentions, fuzzy_pairs, name_key  # noqa: E402
from common.paths import LABELED_DIR, SAMPLE_CSV  # noqa: E402

SHARED_CSV = ROOT.parent / "shared" / "data" / "benzinga_headlines.csv"
RESULTS = ROOT / "benchmarks" / "RESULTS_cluster.md"
SUFFIX = ["Inc.", "Inc", "Corp", "Corporation", "Holdings", "Group", "Ltd", "plc", "Co."]
_CAPS = re.compile(r"\b(?:[A-Z][a-zA-Z&'.-]+)(?:\s+[A-Z][a-zA-Z&'.-]+){0,3}")
# Headline words that end a company name in a capitalised title ("Axcelis Shares Surge").
_STOP = {
    "Shares", "Stock", "Stocks", "Says", "Reports", "Announces", "Upgrades", "Downgrades",
    "Initiates", "Maintains", "Raises", "Lowers", "Cuts", "Sees", "Beats", "Misses", "Rises",
    "Falls", "To", "On", "In", "For", "With", "Of", "At", "The", "From", "And", "As", "By",
    "Q1", "Q2", "Q3", "Q4", "CEO", "Coverage", "Price", "Target", "Earnings", "Update",
    "UPDATE", "Buy", "Sell", "Hold", "Neutral", "Outperform", "Is", "Are", "Up", "Down", "New",
}


def _company_phrases(title: str) -> list[str]:
    out = []
    for m in _CAPS.finditer(title):
        words = []
        for w in m.group(0).split():
            if w in _STOP:
                break
            words.append(w)
        if words and len(" ".join(words)) >= 3:
            out.append(" ".join(words).rstrip(".'"))
    return out


def seed_names() -> list[str]:
    """Distinct real company strings from the labeled files and the headline titles."""
    names = set()
    for p in LABELED_DIR.glob("*.jsonl"):
        for line in open(p, encoding="utf-8"):
            names.update(e["text"] for e in json.loads(line)["entities"])
    for path in (SHARED_CSV, SAMPLE_CSV):
        if path.exists():
            with open(path, newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    names.update(_company_phrases(row["title"]))
                    if row.get("stock_symbol"):
                        names.add(row["stock_symbol"])
    return sorted(n for n in names if n.strip())


def variant(name: str, rng: random.Random) -> str:
    """One realistic way the LLM writes a name differently."""
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
    """``n`` distinct strings: 60 % real names (all of them once n outgrows them), the rest
    variants of those, so every size holds clusters of related spellings."""
    rng = random.Random(seed)
    base = seed_names()
    real = rng.sample(base, min(len(base), int(0.6 * n)))
    out = set(real)
    while len(out) < n:
        out.add(variant(rng.choice(real), rng))
    return sorted(out)


def measure_one(n: int) -> dict:
    """Cluster n names in this process: seconds and peak RSS (MiB) above the input's."""
    names = make_names(n)
    base_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    cl = cluster_mentions(Mention(s) for s in names)
    secs = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"names": len(names), "seconds": secs, "peak_rss_mib": peak_kib / 1024,
            "added_rss_mib": (peak_kib - base_kib) / 1024, "clusters": len(cl.members),
            "merged": len(cl.merged())}


def pair_quality(n: int) -> dict:
    """Blocked candidate pairs against exact all-pairs cdist on the same keys."""
    keys = sorted({name_key(s) for s in make_names(n) if len(name_key(s)) >= 4})
    t0 = time.perf_counter()
    exact = fuzzy_pairs(keys, 85, block=False)
    t_exact = time.perf_counter() - t0
    t0 = time.perf_counter()
    blocked = fuzzy_pairs(keys, 85, block=True)
    t_block = time.perf_counter() - t0
    tp = len(exact & blocked)
    return {"keys": len(keys), "exact": len(exact), "blocked": len(blocked), "tp": tp,
            "precision": tp / len(blocked) if blocked else 1.0,
            "recall": tp / len(exact) if exact else 1.0, "t_exact": t_exact, "t_block": t_block}


def write_results(rows: list[dict], q: dict, q_n: int, cmd: str) -> None:
    lines = [
        "# Clustering benchmark", "",
        f"Command: `{cmd}` ({os.cpu_count()} cores, shared with other work; "
        f"Python {platform.python_version()}). Each size runs in a fresh process; peak RSS is "
        "the process's maximum resident memory, 'added' is what clustering took above the "
        "loaded names.", "",
        "| names | seconds | peak RSS MiB | added MiB | clusters | multi-form clusters |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['names']:,} | {r['seconds']:.1f} | {r['peak_rss_mib']:.0f} | "
                     f"{r['added_rss_mib']:.0f} | {r['clusters']:,} | {r['merged']:,} |")
    lines += [
        "", f"Blocked candidate search (first-2 / last-2 character blocks, `process.cdist` with "
        f"`score_cutoff=85` inside each block) against exact all-pairs `cdist` on the "
        f"{q['keys']:,} distinct keys (4+ characters) of the {q_n:,} set: {q['tp']:,} of "
        f"{q['exact']:,} pairs found, precision {q['precision']:.4f}, recall {q['recall']:.4f} "
        f"(target >= 0.99); {q['t_block']:.1f} s vs {q['t_exact']:.1f} s.", "",
        "The clustering joins a fuzzy pair only when the head words agree as well (see "
        "`common/clustering.py`); precision/recall above are of the candidate search that "
        "both versions share.", "",
    ]
    RESULTS.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: one size
    ap.add_argument("--no-write", action="store_true", help="don't update RESULTS_cluster.md")
    a = ap.parse_args()
    if a.one:
        print(json.dumps(measure_one(a.one)))
        return
    console = Console()
    rows = []
    for n in track(a.sizes, description="clustering", console=console):
        res = subprocess.run([sys.executable, __file__, "--one", str(n)], check=True,
                             capture_output=True, text=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    t = Table(title="clustering (threshold 85)")
    for c in ("names", "seconds", "peak RSS MiB", "added MiB", "clusters", "multi-form"):
        t.add_column(c, justify="right")
    for r in rows:
        t.add_row(f"{r['names']:,}", f"{r['seconds']:.1f}", f"{r['peak_rss_mib']:.0f}",
                  f"{r['added_rss_mib']:.0f}", f"{r['clusters']:,}", f"{r['merged']:,}")
    console.print(t)
    q_n = min(a.sizes)
    with console.status(f"exact all-pairs cdist on the {q_n:,} set..."):
        q = pair_quality(q_n)
    console.print(f"pairs on {q['keys']:,} keys: exact {q['exact']:,} in {q['t_exact']:.1f} s, "
                  f"blocked {q['blocked']:,} in {q['t_block']:.1f} s: precision "
                  f"{q['precision']:.4f}, recall {q['recall']:.4f}")
    if not a.no_write:
        write_results(rows, q, q_n, " ".join([".venv/bin/python benchmarks/cluster.py", *sys.argv[1:]]))
        console.print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
