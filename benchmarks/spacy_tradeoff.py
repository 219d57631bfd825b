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
from common.spans import LABEL  # noqa: E402
from training.data import read_jsonl, spans_of  # noqa: E402
from training.spacy_trainer import predict_spans as predict  # noqa: E402


def train(out: Path, epochs: int) -> dict:
    """``tickertag train spacy --epochs N``: the product's own trainer (best valid epoch kept)."""
    from training.config import TrainConfig
    from training.runner import run_training

    return run_training(TrainConfig(kind="spacy", epochs=epochs, output=str(out),
                                    save_checkpoints=False))


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
        out = Path(d) / "spacy-ner"
        m = train(out, args.epochs)
        path = str(out / m["model"])
        nlp = spacy.load(path)
        s = score([spans_of(r) for r in test], predict(nlp, [r["text"] for r in test]))
        table = Table(title=f"spaCy sm NER trained for {LABEL} (tickertag train spacy): best "
                            f"epoch {m['best_epoch']}/{args.epochs} (valid F1 "
                            f"{m['best_epoch_valid_f1']:.3f}), {m['train_seconds']:.0f} s, "
                            f"{m['spans_dropped']} spans dropped (cut a token); {len(texts)} "
                            "headlines timed")
        for col in ("measure", "value"):
            table.add_column(col, justify="right")
        table.add_row("test P / R / F1", f"{s.precision:.3f} / {s.recall:.3f} / {s.f1:.3f}")
        for bs in (1, 32, 256):
            t0 = time.perf_counter()
            list(nlp.pipe(texts, batch_size=bs))
            table.add_row(f"1 process, batch {bs}, headlines/s",
                          f"{len(texts) / (time.perf_counter() - t0):.0f}")
        table.add_row(f"{args.processes} processes, batch 256, headlines/s",
                      f"{bulk_rate(path, texts, args.processes):.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()
