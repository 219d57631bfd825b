"""How much entity linking adds to tagging a headline.

Why: linking runs after the tagger on every headline of the stream, so it must stay a small
fraction (< 10%) of a compact model's ~1 ms per headline. Absolute times move with the machine,
so ``link`` is timed next to a fixed reference in the same run: ``spacy.blank("en")``'s
tokenizer on the same headlines (a step every spaCy student pays before its network runs).
``--model DIR`` also times a real model's ``predict`` on them (inference only, no training).

Input: the 608 gold test headlines (test + test2) and their gold spans; the alias table from
``--table`` (default ``models/aliases.json``, built in memory from the default inputs when
missing).

Usage: python benchmarks/linking.py [--table models/aliases.json] [--repeat 5] [--model DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from linking.build import build_table  # noqa: E402
from linking.files import TEST_FILES  # noqa: E402
from linking.keys import name_key  # noqa: E402
from linking.linker import headline_tickers, link  # noqa: E402
from linking.table import AliasTable  # noqa: E402
from training.data import read_jsonl, spans_of  # noqa: E402

BUDGET_S = 1e-3  # a compact model's ~1 ms per headline, the time linking is measured against


def _best(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` runs: the least disturbed by the other jobs on the box."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default=str(ROOT / "models" / "aliases.json"))
    ap.add_argument("--repeat", type=int, default=5, help="timings per step (the best counts)")
    ap.add_argument("--model", default=None, help="also time this model directory's predict")
    a = ap.parse_args()

    import spacy

    table = AliasTable.load(a.table) if Path(a.table).exists() else build_table()
    rows = [r for p in TEST_FILES for r in read_jsonl(p)]
    texts = [r["text"] for r in rows]
    spans = [spans_of(r) for r in rows]
    n, n_spans = len(rows), sum(len(s) for s in spans)

    def run_link() -> None:
        for sp, t in zip(spans, texts, strict=True):
            headline_tickers(sp, t, table, link(sp, t, table))

    name_key.cache_clear()
    t0 = time.perf_counter()
    run_link()
    cold = time.perf_counter() - t0  # first pass: name keys not cached yet
    nlp = spacy.blank("en")

    def run_tok() -> None:
        for t in texts:
            nlp.make_doc(t)

    run_tok()  # warm-up (lazy tables)
    results: dict[str, float] = {}
    for _ in range(a.repeat):  # interleaved, so a slow moment hits both alike
        results["link"] = min(results.get("link", float("inf")), _best(run_link, 1))
        results["tok"] = min(results.get("tok", float("inf")), _best(run_tok, 1))
    if a.model:
        from training.inference import load_tagger

        tagger = load_tagger(a.model, threads=1)
        tagger.predict(texts[:32])
        results["model"] = _best(lambda: tagger.predict(texts), max(1, a.repeat // 2))

    tok = results["tok"]
    t = Table(title=f"linking cost: {n} test headlines, {n_spans} gold spans, best of {a.repeat}, "
                    f"{len(table.entries)} table names")
    for c in ("step", "total ms", "µs / headline", "x tokenizer", "% of 1 ms/headline"):
        t.add_column(c, justify="left" if c == "step" else "right")

    def row(label: str, secs: float) -> None:
        t.add_row(label, f"{secs * 1e3:.1f}", f"{secs / n * 1e6:.1f}", f"{secs / tok:.2f}",
                  f"{secs / n / BUDGET_S * 100:.1f}")

    row('spacy.blank("en") tokenizer (reference)', tok)
    row("link + headline_tickers (warm)", results["link"])
    row("link + headline_tickers (cold name-key cache)", cold)
    if "model" in results:
        row(f"model predict: {a.model}", results["model"])
    Console().print(t)
    share = results["link"] / (results["model"] if "model" in results else BUDGET_S * n)
    ref = "the model's predict" if "model" in results else "1 ms/headline"
    print(f"linking adds {share * 100:.1f}% to {ref} (target < 10%)")


if __name__ == "__main__":
    main()
