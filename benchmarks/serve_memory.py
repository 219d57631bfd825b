"""Resident memory of one process tagging headlines of fresh vocabulary with a spaCy model.

Why: spaCy keeps every new string it meets (its ``StringStore``, lexeme table and tokenizer
cache) for the life of the pipeline, and a stream of headlines brings new words without end:
company names, tickers, people. ``tickertag serve`` and each ``ner`` worker grew ~5 MB per 24k
such headlines and never gave it back. This script tags ``--headlines`` synthetic headlines
(real Benzinga headlines whose companies are replaced by made-up names and tickers never seen
before) in batches as the service does, and prints RSS and the size of the vocabulary every
10% of the run, each run in a fresh process.

``--checkouts NAME=DIR ...`` measures the ``training`` package of each checkout given (e.g. the
commit before the fix, exported with ``git archive``) on the same headlines and model, one
fresh process each, side by side; the default is this checkout alone. ``--rebuild-after N``
sets how many new strings the spaCy tagger takes between two rebuilds of its pipeline, to see
rebuilds in a run of a few minutes.

Usage::

    python benchmarks/serve_memory.py --model models/spacy                   # 100k headlines
    python benchmarks/serve_memory.py --model models/spacy --headlines 30000 \
        --checkouts before=/tmp/old after=.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.default_model import model_or_baseline  # noqa: E402

GOLD = ROOT / "data" / "labeled" / "benzinga_gold_train.jsonl"
_SYLLABLES = ("ka", "zo", "vex", "tri", "lum", "qua", "nor", "bel", "dra", "fen", "gal", "hex",
              "ix", "jor", "kel", "mar", "nix", "ost", "pra", "rul", "sen", "tor", "ul", "vin",
              "wex", "yar", "zen", "bro", "cal", "dex", "ep", "fal")
_SUFFIXES = ("", "", " Inc.", " Holdings", " Therapeutics", " Corp", " Group", " Energy")


def made_up_word(i: int) -> str:
    """A pronounceable word unique to ``i`` (its digits in base 32, one syllable each)."""
    parts = []
    i += 32 ** 2  # at least three syllables: no collision with short real words
    while i:
        i, d = divmod(i, len(_SYLLABLES))
        parts.append(_SYLLABLES[d])
    return "".join(parts).capitalize()


def made_up_ticker(i: int) -> str:
    """Five capitals unique to ``i`` (below 26 ** 5, about 11.9 million)."""
    letters = []
    for _ in range(5):
        i, d = divmod(i, 26)
        letters.append(chr(ord("A") + d))
    return "".join(letters)


def _templates() -> list[tuple[str, list[tuple[int, int]]]]:
    """Gold headlines with at least one company, and where their companies are."""
    from common.jsonl import iter_jsonl

    out = []
    for row in iter_jsonl(GOLD):
        spans = sorted((e["start"], e["end"]) for e in row.get("entities") or [])
        if spans:
            out.append((row["text"], spans))
    return out


def fresh_headlines(n: int, start: int = 0) -> Iterator[str]:
    """``n`` headlines, each a gold headline whose companies are made-up names (tickers stay
    tickers), every name new: the vocabulary a long stream of news brings."""
    templates = _templates()
    k = start * 4
    for i in range(start, start + n):
        text, spans = templates[i % len(templates)]
        parts, last = [], 0
        for a, b in spans:
            orig = text[a:b]
            k += 1
            if orig.isupper() and len(orig) <= 5:
                new = made_up_ticker(k)
            else:
                new = made_up_word(k) + _SUFFIXES[k % len(_SUFFIXES)]
            parts += [text[last:a], new]
            last = b
        parts.append(text[last:])
        yield "".join(parts)


def rss_mb() -> float:
    """Resident set now (not the peak): what the process holds at this point of the run."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def child(model: str, headlines: int, batch: int, rebuild_after: int | None) -> dict:
    """Tag in this (fresh) process and sample memory every 10% of the headlines."""
    from training.inference import load_tagger

    tagger = load_tagger(model)
    rebuilds = 0
    if hasattr(tagger, "rebuild"):  # a checkout from before the bound has none
        if rebuild_after:
            tagger.rebuild_after = rebuild_after
        rebuild = tagger.rebuild

        def counted() -> None:
            nonlocal rebuilds
            rebuilds += 1
            rebuild()

        tagger.rebuild = counted
    tagger.predict(["warm up"])

    def sample(done: int, seconds: float) -> dict:
        return {"done": done, "seconds": round(seconds, 1), "rss_mb": rss_mb(),
                "strings": len(tagger.nlp.vocab.strings),
                "rebuilds": rebuilds if hasattr(tagger, "rebuild") else "-"}

    samples = [sample(0, 0.0)]
    marks = {headlines * p // 10 for p in range(1, 11)}
    t0, done, pending = time.perf_counter(), 0, []
    for text in fresh_headlines(headlines):
        pending.append(text)
        if len(pending) == batch or done + len(pending) in marks:
            tagger.predict(pending)
            done += len(pending)
            pending = []
            if done in marks:
                samples.append(sample(done, time.perf_counter() - t0))
    import training

    return {"samples": samples, "training": training.__file__}


def measure(root: Path, model: str, headlines: int, batch: int, rebuild_after: int) -> dict:
    """One run in a fresh interpreter whose ``training`` package comes from ``root``."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", model, str(headlines), str(batch),
         str(rebuild_after)],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, check=True,
        capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(runs: list[tuple[str, dict]]) -> str:
    """Markdown: one row per 10% of the run, RSS and strings of each checkout side by side."""
    head = "| headlines | " + " | ".join(
        f"{name}: RSS MB | {name}: +MB | {name}: strings | {name}: rebuilds | {name}: s"
        for name, _ in runs) + " |"
    rule = "|---:|" + "---:|---:|---:|---:|---:|" * len(runs)
    lines = [head, rule]
    for i in range(len(runs[0][1]["samples"])):
        cells = [f"{runs[0][1]['samples'][i]['done']:,}"]
        for _, r in runs:
            s, base = r["samples"][i], r["samples"][0]
            cells += [f"{s['rss_mb']:.1f}", f"{s['rss_mb'] - base['rss_mb']:+.1f}",
                      f"{s['strings']:,}", f"{s['rebuilds']}", f"{s['seconds']}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="a spaCy model directory (default: the spaCy baseline, "
                    "en_core_web_sm, written to a temporary directory)")
    ap.add_argument("--headlines", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=64, help="texts per predict call (the "
                    "service's --max-batch)")
    ap.add_argument("--checkouts", nargs="+", default=[f"after={ROOT}"], metavar="NAME=DIR",
                    help="checkouts whose training package to measure, in this order")
    ap.add_argument("--rebuild-after", type=int, default=0, help="new strings between two "
                    "rebuilds of the pipeline (default: the tagger's own, 200k)")
    ap.add_argument("--child", nargs=4, metavar=("MODEL", "HEADLINES", "BATCH", "REBUILD"),
                    help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        model, n, batch, rebuild_after = a.child
        print(json.dumps(child(model, int(n), int(batch), int(rebuild_after) or None)))
        return
    with tempfile.TemporaryDirectory(prefix="tt-serve-mem-") as tmp:
        model = model_or_baseline(a.model, tmp)
        roots = [(name, Path(d).resolve())
                 for name, d in (c.split("=", 1) for c in a.checkouts)]
        runs = []
        for name, root in roots:
            runs.append((name, measure(root, model, a.headlines, a.batch, a.rebuild_after)))
            print(f"{name} ({root}): {runs[-1][1]['samples'][-1]}", file=sys.stderr, flush=True)
    print(f"RSS of one process tagging {a.headlines:,} fresh-vocabulary headlines with {model}, "
          f"batches of {a.batch}, rebuild after {a.rebuild_after or 'default'} new strings\n")
    print(table(runs))


if __name__ == "__main__":
    main()
