"""The model families tickertag knows, each under a versioned name, in one place.

Why a registry (as spaCy's ``@architectures`` and ``"spacy.Tok2Vec.v2"``): the list of model
kinds was kept by hand in the config, the training runner, the loader and the CLI, and the four
drifted. Each family here says, by dotted path, which function trains it and which class loads
it; the runner, ``load_tagger``, the config's ``kind`` check and the CLI's choices all read this.
Dotted paths keep this module a leaf: importing it imports no trainer, so nothing here can form
an import cycle, and a family's heavy dependencies (torch, spaCy) load only when it is used.

A manifest records ``kind`` (``"gliner"``) and, since this registry, ``family``
(``"gliner.v1"``): a future incompatible change adds ``gliner.v2`` next to ``v1`` and old
directories keep loading.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Family:
    name: str  # versioned: "<kind>.v<n>"
    kind: str  # what manifests and configs say
    load: str  # "module:Class" of the Tagger that loads a directory of this family
    train: str | None = None  # "module:function(cfg, on_progress)"; None: not trainable here
    about: str = ""
    # "module:function(model_dir, manifest)" raising ValueError for a directory this family
    # must not load (paths its own files name); run by ``servable_manifest`` before any load
    check: str | None = None


FAMILIES: dict[str, Family] = {}


def register(f: Family) -> Family:
    if f.kind in FAMILIES:
        raise ValueError(f"model kind {f.kind!r} is registered twice")
    FAMILIES[f.kind] = f
    return f


register(Family("gliner.v1", "gliner", "training.inference:GlinerTagger",
                "training.gliner_trainer:train_gliner",
                "GLiNER span model (torch); slow on CPU, the accurate teacher"))
register(Family("gliner-onnx.v1", "gliner-onnx", "training.inference:OnnxGlinerTagger",
                about="a GLiNER exported by `tickertag export-onnx` (int8, CPU)"))
register(Family("spanmarker.v1", "spanmarker", "training.inference:SpanMarkerTagger",
                "training.spanmarker_trainer:train_spanmarker", "SpanMarker on a BERT encoder"))
register(Family("spacy.v1", "spacy", "training.baselines:SpacyTagger",
                "training.spacy_trainer:train_spacy",
                "spaCy's CNN NER: fast on CPU, the distilled student",
                check="training.baselines:spacy_pipeline"))
register(Family("gazetteer.v1", "gazetteer", "training.baselines:GazetteerTagger",
                about="known names and ticker patterns (a baseline)"))


def _resolve(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def family(kind: str) -> Family:
    if kind not in FAMILIES:
        raise ValueError(f"unknown model kind {kind!r} (known: {sorted(FAMILIES)})")
    return FAMILIES[kind]


def trainable_kinds() -> list[str]:
    return [k for k, f in FAMILIES.items() if f.train]


def trainer(kind: str) -> Any:
    f = family(kind)
    if not f.train:
        raise ValueError(f"model kind {kind!r} is not trained by `tickertag train` "
                         f"(trainable: {trainable_kinds()})")
    return _resolve(f.train)


def tagger_class(kind: str) -> Any:
    return _resolve(family(kind).load)


def check_model_dir(kind: str, model_dir: str, manifest: dict[str, Any]) -> None:
    """The family's own check of a directory (the paths its files name), if it has one."""
    f = family(kind)
    if f.check:
        _resolve(f.check)(model_dir, manifest)
