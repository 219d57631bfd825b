"""ONNX export (optionally int8) of a fine-tuned GLiNER, checked against the torch model.

Why: on a CPU host the compact model's cost is its forward pass. ONNX Runtime with dynamically
quantized int8 weights runs the same graph with less arithmetic and memory traffic, but
quantization can move predictions, so an export is only accepted when the exact-span F1 on a
test split (the shared scorer) stays within ``max_f1_drop`` of the torch model it came from.
The check is written into the exported directory's manifest, so a served model says how far it
may be from the trained one.

The exported directory is a model directory like any other: ``load_tagger``, ``tickertag
predict``, ``tickertag serve`` and the ``ner`` queue load it (kind ``gliner-onnx``), and
``GLiNER.from_pretrained(dir, load_onnx_model=True, onnx_model_file=...)`` loads it without
tickertag.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common.metrics import score
from common.paths import LABELED_DIR
from common.progress import Tick
from training.card import refresh_model_card
from training.data import read_jsonl, spans_of
from training.inference import load_tagger, read_manifest
from training.manifest import model_fingerprint, write_manifest

ONNX_FP32 = "model.onnx"
ONNX_INT8 = "model_int8.onnx"
DEFAULT_CHECK = str(LABELED_DIR / "benzinga_gold_test.jsonl")


# Which MatMuls get int8 weights. Measured on gliner-gold (training/RESULTS.md): GLiNER's own
# per-tensor uint8 lost 1.9 F1 points on test, all of it in the encoder; per-channel int8
# weights lost 0.7; keeping the encoder's feed-forward MatMuls (whose activations carry the
# outliers BERT-like encoders are known for) in fp32 lost 0.2 at 1.5x the fp32 speed.
RECIPES = ("int8-ffn-fp32", "int8")


class ExportCheckFailed(RuntimeError):
    """The exported model's F1 moved more than allowed; the directory is kept for inspection."""


@contextmanager
def _step(progress: Tick | None, name: str) -> Iterator[None]:
    """One step of the export for ``progress(what, done, total)``: started (total unknown:
    a spinning bar), then 1 of 1 once it returns."""
    if progress:
        progress(name, 0, None)
    yield
    if progress:
        progress(name, 1, 1)


def _f1_and_rate(model_dir: str | Path, texts: list[str], gold: list, batch_size: int
                 ) -> tuple[float, float]:
    tagger = load_tagger(model_dir)
    tagger.predict(texts[:8], None, batch_size)  # warm-up: first call builds sessions/caches
    t0 = time.perf_counter()
    pred = tagger.predict(texts, None, batch_size)
    return score(gold, pred).f1, len(texts) / (time.perf_counter() - t0)


def _ffn_matmuls(onnx_path: Path) -> list[str]:
    """The encoder's feed-forward MatMuls (``intermediate`` and the block ``output``)."""
    import onnx

    names = [n.name for n in onnx.load(str(onnx_path), load_external_data=False).graph.node
             if n.op_type == "MatMul"]
    return [n for n in names if "/intermediate/" in n
            or ("/output/dense/" in n and "/attention/" not in n)]


def quantize_onnx(onnx_path: Path, out_path: Path, recipe: str = "int8-ffn-fp32") -> None:
    """Dynamic int8 weights (per output channel) for the MatMuls the recipe selects."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if recipe not in RECIPES:
        raise ValueError(f"unknown quantization recipe {recipe!r} (known: {', '.join(RECIPES)})")
    exclude = _ffn_matmuls(onnx_path) if recipe == "int8-ffn-fp32" else []
    quantize_dynamic(str(onnx_path), str(out_path), per_channel=True,
                     weight_type=QuantType.QInt8, nodes_to_exclude=exclude)


def export_onnx(model_dir: str | Path, output: str | Path, quantize: bool = True,
                check_file: str | None = DEFAULT_CHECK, max_f1_drop: float = 0.005,
                batch_size: int = 32, recipe: str = "int8-ffn-fp32",
                progress: Tick | None = None) -> dict[str, Any]:
    """Export ``model_dir`` (a GLiNER directory) to ``output``; return the written manifest.

    Raises ``ExportCheckFailed`` when F1 on ``check_file`` drops by more than ``max_f1_drop``
    (absolute, 0.005 = half a point). ``check_file=None`` skips the check (recorded as such).
    ``progress(step, done, total)`` names each step as it starts and ends (export, quantize,
    check torch, check onnx).
    """
    from gliner import GLiNER

    src, out = Path(model_dir), Path(output)
    manifest = read_manifest(src)
    if manifest.get("kind") != "gliner":
        raise ValueError(f"{src}: ONNX export needs a GLiNER model directory, found kind "
                         f"{manifest.get('kind')!r}")
    from training.span_head import factor_span_heads

    with _step(progress, "export"):
        model = GLiNER.from_pretrained(str(src), local_files_only=True, map_location="cpu")
        model.eval()
        factored = factor_span_heads(model)  # same function, ~2x fewer span-head FLOPs in the graph
        model.export_to_onnx(save_dir=out, onnx_filename=ONNX_FP32, quantize=False)
    if quantize:
        with _step(progress, "quantize"):
            quantize_onnx(out / ONNX_FP32, out / ONNX_INT8, recipe)
    new = {**manifest, "kind": "gliner-onnx", "onnx_file": ONNX_INT8 if quantize else ONNX_FP32,
           "quantized": recipe if quantize else None, "factored_span_head": factored > 0,
           "exported_from": str(src.resolve()), "exported_from_fingerprint": model_fingerprint(src)}
    new = write_manifest(out, new)  # the check below loads ``out`` through its manifest
    if check_file is None:
        new["check"] = None
    else:
        rows = read_jsonl(check_file)
        texts, gold = [r["text"] for r in rows], [spans_of(r) for r in rows]
        with _step(progress, "check torch"):
            f1_torch, rate_torch = _f1_and_rate(src, texts, gold, batch_size)
        with _step(progress, "check onnx"):
            f1_onnx, rate_onnx = _f1_and_rate(out, texts, gold, batch_size)
        new["check"] = {"file": str(check_file), "headlines": len(rows),
                        "torch_f1": round(f1_torch, 4), "onnx_f1": round(f1_onnx, 4),
                        "f1_change": round(f1_onnx - f1_torch, 4), "max_f1_drop": max_f1_drop,
                        "torch_headlines_per_s": round(rate_torch, 1),
                        "onnx_headlines_per_s": round(rate_onnx, 1),
                        "passed": f1_torch - f1_onnx <= max_f1_drop}
    new = write_manifest(out, new)
    refresh_model_card(out)  # README.md with the Hub's metadata, the F1 check included
    if new["check"] and not new["check"]["passed"]:
        c = new["check"]
        raise ExportCheckFailed(f"ONNX F1 {c['onnx_f1']:.4f} vs torch {c['torch_f1']:.4f} on "
                                f"{check_file}: drop above {max_f1_drop}; not for serving "
                                f"(kept in {out} for inspection)")
    return new
