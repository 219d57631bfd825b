"""One way to load any model directory and tag headlines with it.

``load_tagger(dir)`` reads the directory's ``tickertag.json`` manifest (kind, prompt label, tuned
threshold) and returns a ``Tagger``: GLiNER (torch or ONNX), SpanMarker, or a baseline
(gazetteer, spaCy).
Directories without a manifest are recognised by their files (``gliner_config.json``, a
SpanMarker ``config.json``), so a GLiNER or SpanMarker saved by other tools loads too.
``tickertag predict``, evaluation, the report, the ``ner`` queue and the HTTP service all call
this, so they all see the same model and the same threshold.

Contract: ``predict(texts, threshold=None, batch_size=32)`` returns, for each text, its
``Company`` spans in text order, each with ``text == texts[i][start:end]`` and a ``score``;
``threshold=None`` means the threshold tuned on valid and saved with the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from common.spans import Span
from training.manifest import (
    MANIFEST,
    check_manifest_paths,
    path_inside,
    refuse_links_outside,
    refuse_remote_code,
)

__all__ = ["MANIFEST", "Tagger", "load_tagger", "read_manifest"]


class Tagger(Protocol):
    kind: str
    threshold: float

    def predict(self, texts: list[str], threshold: float | None = None,
                batch_size: int = 32) -> list[list[Span]]: ...


class GlinerTagger:
    """A fine-tuned GLiNER prompted with the label it was trained with."""

    kind = "gliner"

    def __init__(self, model_dir: str, manifest: dict[str, Any]) -> None:
        from gliner import GLiNER

        from training.encoders import device
        from training.span_head import factor_span_heads

        self.model = GLiNER.from_pretrained(model_dir, local_files_only=Path(model_dir).exists(),
                                            map_location=device())
        self.model.eval()
        factor_span_heads(self.model)  # exact, cheaper span scoring for inference
        self.label = manifest.get("label", "company")
        self.threshold = float(manifest.get("threshold", 0.5))

    def predict(self, texts: list[str], threshold: float | None = None,
                batch_size: int = 32) -> list[list[Span]]:
        from training.gliner_trainer import predict_spans

        if not texts:
            return []
        thr = self.threshold if threshold is None else threshold
        return predict_spans(self.model, texts, self.label, thr, batch_size)


class OnnxGlinerTagger(GlinerTagger):
    """A GLiNER exported by ``tickertag export-onnx``: same pre/post-processing, the forward
    pass in ONNX Runtime (int8 weights when quantized). CPU only by design: on a GPU the torch
    model is the fast path."""

    kind = "gliner-onnx"

    def __init__(self, model_dir: str, manifest: dict[str, Any]) -> None:
        import onnxruntime as ort
        import torch
        from gliner import GLiNER

        opts = ort.SessionOptions()
        # One intra-op pool the size torch was given (load_tagger's ``threads``), so N worker
        # processes with 1 thread each do not fight over the cores.
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.inter_op_num_threads = 1
        onnx_file = manifest.get("onnx_file", "model.onnx")
        path_inside(model_dir, onnx_file, "onnx_file")
        self.model = GLiNER.from_pretrained(model_dir, local_files_only=True, map_location="cpu",
                                            load_onnx_model=True, session_options=opts,
                                            onnx_model_file=onnx_file)
        self.label = manifest.get("label", "company")
        self.threshold = float(manifest.get("threshold", 0.5))


class SpanMarkerTagger:
    kind = "spanmarker"

    def __init__(self, model_dir: str, manifest: dict[str, Any]) -> None:
        from training.spanmarker_trainer import load_spanmarker

        self.model = load_spanmarker(model_dir)
        self.threshold = float(manifest.get("threshold", 0.5))

    def predict(self, texts: list[str], threshold: float | None = None,
                batch_size: int = 32) -> list[list[Span]]:
        from training.spanmarker_trainer import predict_spans

        thr = self.threshold if threshold is None else threshold
        return predict_spans(self.model, texts, thr, batch_size) if texts else []


def read_manifest(model_dir: str | Path) -> dict[str, Any]:
    """The directory's manifest, or one inferred from a GLiNER / SpanMarker save."""
    d = Path(model_dir)
    if (d / MANIFEST).exists():
        return json.loads((d / MANIFEST).read_text())
    if (d / "gliner_config.json").exists():
        return {"kind": "gliner"}
    from training.spanmarker_trainer import is_spanmarker_dir

    if is_spanmarker_dir(d):
        return {"kind": "spanmarker"}
    raise FileNotFoundError(f"{d} is not a model directory (no {MANIFEST}, no GLiNER or "
                            "SpanMarker config); build one with `tickertag train` or `baseline`")


def load_tagger(model_dir: str | Path, threads: int | None = None) -> Tagger:
    """Load a model directory written by ``tickertag train``, ``baseline`` or ``export-onnx``.

    ``threads``: CPU threads for inference (torch, ONNX Runtime, and every BLAS and OpenMP
    pool, e.g. numpy's BLAS that spaCy's layers may multiply on: ``training/spacy_ops.py``);
    ``None`` keeps each library's default (one per core). Bulk workers run one process per
    core with ``threads=1``. Call it from the thread that will run the model: OpenMP's limit
    holds for the calling thread."""
    from training.registry import tagger_class

    manifest = servable_manifest(model_dir)
    if threads:
        import torch

        torch.set_num_threads(threads)
    tagger = tagger_class(manifest["kind"])(str(model_dir), manifest)
    if threads:
        limit_threads(threads)
    return tagger


def limit_threads(threads: int) -> None:
    """Cap every thread pool loaded so far (each OpenBLAS copy, each OpenMP runtime) at
    ``threads``, for the life of the process (OpenMP's: of the calling thread).

    After the model loads, not before: loading brings in libraries with pools of their own
    (scipy's second OpenBLAS, torch's OpenMP) that an earlier limit misses. Their idle
    threads spin between a small model's products and take the cores an HTTP service's event
    loops need: two service processes with 16 clients tagged 177 headlines/s with them and
    725 with both pools at one thread (``OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1``)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)


def servable_manifest(model_dir: str | Path) -> dict[str, Any]:
    """The manifest of a directory ``load_tagger`` would serve, or a ``ValueError`` saying why
    not: checked before any weights load, so a caller that hands the directory to remote
    workers (``distil``'s teachers) fails at once instead of dead-lettering every batch.

    Links are checked first (a linked manifest is refused unread), then every path the
    manifest names, then what the family's own files name (a spaCy pipeline's config)."""
    from training.registry import FAMILIES, check_model_dir

    refuse_links_outside(model_dir)
    refuse_remote_code(model_dir)
    manifest = read_manifest(model_dir)
    check_manifest_paths(model_dir, manifest)
    kind = manifest.get("kind")
    check = manifest.get("check") or {}
    if check.get("passed") is False:  # an export that failed its F1 check is kept to inspect only
        raise ValueError(f"{model_dir}: refused by its export check (F1 {check.get('onnx_f1')} vs "
                         f"{check.get('torch_f1')} before export, allowed drop "
                         f"{check.get('max_f1_drop')}); export again with another recipe or bound")
    if kind not in FAMILIES:
        raise ValueError(f"{model_dir}: unknown model kind {kind!r} (known: {sorted(FAMILIES)})")
    check_model_dir(kind, str(model_dir), manifest)
    return manifest
