"""Which matrix-product kernel spaCy tags faster with on this machine: thinc's bundled BLIS or
numpy's BLAS (``training/spacy_ops.py``), for the products alone and for whole pipelines.

Why: the choice decides most of a spaCy NER's tagging time on CPUs where BLIS runs its generic
kernel, and the two must find the same entities. One process, one BLAS thread, interleaved
repeats (a slow moment hits both kernels), best of ``--repeat``.

Usage: python benchmarks/spacy_gemm.py --model models/student --model models/spacy-gold
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
from training.data import read_jsonl  # noqa: E402

# (rows, inputs, outputs) of the student's products: a 64-headline batch through the CNN's
# maxout layer (width 96, 3 pieces), and a window of the tok2vec's input mixing
SHAPES = [(640, 96, 288), (640, 288, 96), (16, 96, 288)]


def _gflops(ops, m: int, k: int, n: int, repeat: int) -> float:
    import numpy

    rng = numpy.random.default_rng(0)
    x, y = rng.random((m, k), dtype=numpy.float32), rng.random((k, n), dtype=numpy.float32)
    best = float("inf")
    for _ in range(repeat * 20):
        t0 = time.perf_counter()
        ops.gemm(x, y)
        best = min(best, time.perf_counter() - t0)
    return 2 * m * k * n / best / 1e9


def _tagging(model: str, kernel: str):
    from training.inference import load_tagger
    from training.spacy_ops import forced_gemm

    with forced_gemm(kernel):  # a pipeline's layers keep the ops they were loaded with
        return load_tagger(model)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", default=[], help="spaCy model directory "
                    "(repeatable)")
    ap.add_argument("--headlines", type=int, default=1200)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    from thinc.api import NumpyOps
    from threadpoolctl import threadpool_limits

    from training.spacy_ops import numpy_blas_ops

    threadpool_limits(1, user_api="blas")
    kernels = {"blis": NumpyOps(), "numpy": numpy_blas_ops()}
    t = Table(title="matrix products, 1 thread, GFLOP/s (best of the repeats)")
    for c in ("shape (m x k x n)", "blis", "numpy", "numpy / blis"):
        t.add_column(c, justify="right")
    for m, k, n in SHAPES:
        g = {name: _gflops(ops, m, k, n, a.repeat) for name, ops in kernels.items()}
        t.add_row(f"{m} x {k} x {n}", f"{g['blis']:.1f}", f"{g['numpy']:.1f}",
                  f"{g['numpy'] / g['blis']:.2f}")
    Console().print(t)
    texts = [r["text"] for r in read_jsonl(LABELED_DIR / "benzinga_gold_test2.jsonl")]
    texts = (texts * (a.headlines // len(texts) + 1))[:a.headlines]
    t = Table(title=f"tagging {len(texts)} headlines in one process, batch 256, headlines/s")
    for c in ("model", "blis", "numpy", "numpy / blis", "same entities"):
        t.add_column(c, justify="right")
    for model in a.model:
        taggers = {k: _tagging(model, k) for k in kernels}
        best = dict.fromkeys(kernels, 0.0)
        found = {}
        for _ in range(a.repeat):
            for k, tagger in taggers.items():
                t0 = time.perf_counter()
                spans = tagger.predict(texts, None, 256)
                best[k] = max(best[k], len(texts) / (time.perf_counter() - t0))
                found[k] = [[(s.start, s.end) for s in doc] for doc in spans]
        same = sum(x == y for x, y in zip(found["blis"], found["numpy"], strict=True))
        t.add_row(Path(model).name, f"{best['blis']:.0f}", f"{best['numpy']:.0f}",
                  f"{best['numpy'] / best['blis']:.2f}", f"{same}/{len(texts)}")
    Console().print(t)


if __name__ == "__main__":
    main()
