"""How fast each spaCy NER size tags headlines, before training any of them.

Why: a student's speed is fixed by its architecture, not by its weights, so the sizes worth
training can be chosen by timing freshly initialised pipelines against en_core_web_sm's NER
(the architecture of the spaCy model trained on gold, the speed reference) in the same run.

Usage: python benchmarks/student_arch.py [--headlines 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from common.paths import LABELED_DIR  # noqa: E402
from training.config import SpacyOptions  # noqa: E402
from training.data import read_jsonl  # noqa: E402

SIZES: dict[str, dict] = {
    "blank w96 d4 (sm's size)": {},
    "blank w128 d4": {"width": 128},
    "blank w96 d4, 4x rows": {"embed_rows": [20000, 4000, 10000, 2500]},
    "blank w128 d4, 4x rows": {"width": 128, "embed_rows": [20000, 4000, 10000, 2500]},
    "blank w96 d6": {"depth": 6},
    "blank w96 d4 window 2": {"window_size": 2},
    "blank w64 d4": {"width": 64},
}


def _pipelines() -> dict[str, object]:
    import spacy

    from common.spans import LABEL
    from training.encoders import SPACY_SMALL
    from training.spacy_parts import blank_ner

    sm = spacy.load(SPACY_SMALL)
    for name in list(sm.pipe_names):
        if name != "ner":
            sm.remove_pipe(name)
    out = {"en_core_web_sm NER (reference)": sm}
    for name, over in SIZES.items():
        nlp = blank_ner(SpacyOptions(start="blank", **over))
        nlp.get_pipe("ner").add_label(LABEL)
        nlp.initialize()
        out[name] = nlp
    return out


def _rate(nlp, texts: list[str]) -> float:
    t0 = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=64):
        pass
    return len(texts) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--headlines", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3, help="timings per size (the best counts)")
    a = ap.parse_args()
    texts = [r["text"] for r in read_jsonl(LABELED_DIR / "benzinga_gold_test2.jsonl")]
    texts = (texts * (a.headlines // len(texts) + 1))[:a.headlines]
    pipes = _pipelines()
    best: dict[str, float] = {}
    for _ in range(a.repeat):  # interleaved, so a slow moment hits every size alike
        for name, nlp in pipes.items():
            best[name] = max(best.get(name, 0.0), _rate(nlp, texts))
    ref = best["en_core_web_sm NER (reference)"]
    t = Table(title=f"spaCy NER sizes, 1 process, {a.headlines} headlines, best of {a.repeat}")
    for c in ("pipeline", "headlines/s", "x reference"):
        t.add_column(c, justify="right")
    for name, r in best.items():
        t.add_row(name, f"{r:.0f}", f"{r / ref:.2f}")
    Console().print(t)


if __name__ == "__main__":
    main()
