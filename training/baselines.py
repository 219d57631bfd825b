"""Baselines saved as model directories, so ``predict --model DIR``, evaluation and the report
treat them like any trained model.

- ``gazetteer``: the company names and tickers the training data labels, each kept only when
  it is labelled at least ``min_precision`` of the times it occurs in the training headlines
  (so ``A`` the ticker does not fire on ``A`` the article), plus a ticker matcher for the
  forms Benzinga uses: ``(NYSE: A)``, ``$TSLA``, ``(BDE, VFC, AGPDY.PK)``. A span's score is
  the name's training precision, so ``threshold`` trades recall for precision.
- ``spacy``: spaCy's small English pipeline, ``ORG`` taken as ``Company`` (zero-shot).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

from common.spans import LABEL, Span, align_spans
from training.data import read_training_rows, spans_of
from training.encoders import SPACY_SMALL
from training.manifest import MANIFEST

_EXCHANGE = re.compile(r"\b(?:NYSE(?:\s?(?:MKT|American|Arca))?|NASDAQ|Nasdaq|NYSEARCA|AMEX|OTC"
                       r"(?:QB|QX|BB)?|TSX(?:V)?|LSE)\s*:\s*([A-Z][A-Z0-9]*(?:\.[A-Z]+)?)")
_DOLLAR = re.compile(r"(?<![\w$])\$([A-Z]{1,5}(?:\.[A-Z]{1,2})?)\b")
_TICKER_LIST = re.compile(r"\(((?:[A-Z]{1,5}(?:\.[A-Z]{1,2})?)(?:,\s?[A-Z]{1,5}(?:\.[A-Z]{1,2})?)*)\)")
_TICKER = re.compile(r"[A-Z]{1,5}(?:\.[A-Z]{1,2})?")


def _ticker_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of tickers in the forms Benzinga writes them."""
    found = [(m.start(1), m.end(1)) for m in _EXCHANGE.finditer(text)]
    found += [(m.start(1), m.end(1)) for m in _DOLLAR.finditer(text)]
    for m in _TICKER_LIST.finditer(text):
        found += [(m.start(1) + t.start(), m.start(1) + t.end()) for t in _TICKER.finditer(m.group(1))]
    return found


def _count_occurrences(texts: list[str], name: str) -> int:
    return sum(len(align_spans(t, [name], case_insensitive=False).spans) for t in texts if name in t)


def build_gazetteer(train_paths: list[str], output: str, min_precision: float = 0.5) -> dict:
    """Write a gazetteer model directory from labelled training files."""
    rows = read_training_rows(train_paths)
    texts = [r["text"] for r in rows]
    labelled: Counter[str] = Counter(s.text for r in rows for s in spans_of(r))
    names: dict[str, float] = {}
    for name, n_lab in labelled.items():
        precision = n_lab / max(n_lab, _count_occurrences(texts, name))
        if precision >= min_precision:
            names[name] = round(precision, 4)
    # Words the ticker patterns catch in training but the labels never mark there ("(FDA)"):
    # never tickers.
    caught: Counter[str] = Counter()
    for r in rows:
        gold = {(s.start, s.end) for s in spans_of(r)}
        caught.update(r["text"][a:b] for a, b in _ticker_spans(r["text"]) if (a, b) not in gold)
    not_tickers = sorted(w for w in caught if w not in labelled)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gazetteer.json").write_text(json.dumps(
        {"names": names, "not_tickers": not_tickers}, ensure_ascii=False))
    manifest = {"kind": "gazetteer", "names": len(names), "threshold": min_precision,
                "train": train_paths, "train_headlines": len(rows)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest




def build_spacy(output: str, model: str = SPACY_SMALL) -> dict:
    """Write a spaCy baseline directory (the pipeline itself is an installed package)."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"kind": "spacy", "model": model, "entity_labels": ["ORG"], "threshold": 0.0}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


class GazetteerTagger:
    """Known names at word boundaries (longest first) plus ticker patterns."""

    kind = "gazetteer"

    def __init__(self, model_dir: str, manifest: dict[str, Any]) -> None:
        data = json.loads((Path(model_dir) / "gazetteer.json").read_text())
        self.names: dict[str, float] = data["names"]
        self.not_tickers = set(data.get("not_tickers", []))
        self.threshold = float(manifest.get("threshold", 0.5))

    def _tickers(self, text: str) -> list[tuple[int, int]]:
        return [(s, e) for s, e in _ticker_spans(text) if text[s:e] not in self.not_tickers]

    def predict(self, texts: list[str], threshold: float | None = None,
                batch_size: int = 32) -> list[list[Span]]:
        thr = self.threshold if threshold is None else threshold
        out = []
        for t in texts:
            present = [n for n, p in self.names.items() if p >= thr and n in t]
            spans = {(s.start, s.end): self.names[s.text]
                     for s in align_spans(t, present, case_insensitive=False).spans}
            for s, e in self._tickers(t):
                if all(e <= a or s >= b for a, b in spans):
                    spans[(s, e)] = 1.0
            out.append([Span(start=s, end=e, label=LABEL, text=t[s:e], score=p)
                        for (s, e), p in sorted(spans.items())])
        return out


def spacy_pipeline(model_dir: str | Path, manifest: dict[str, Any]) -> str | Path:
    """What ``spacy.load`` gets for a model directory: its pipeline directory, resolved and
    checked (links, and the paths its ``config.cfg`` names), or an installed package's name.

    Why so strict: ``spacy.load`` takes a name that is no installed package as a path from the
    working directory, and its config can ``source`` components from any directory; either
    would load files from outside the model."""
    import spacy

    from training.manifest import UnsafeModelDir, is_package_name, path_inside, refuse_links_outside

    name = str(manifest.get("model") or SPACY_SMALL)
    if is_package_name(name) and not os.path.lexists(Path(model_dir) / name):
        if not spacy.util.is_package(name):
            raise UnsafeModelDir(f"{model_dir}: manifest field 'model' = {name!r} is neither "
                                 "a directory in the model directory nor an installed spaCy "
                                 "pipeline")
        return name
    pipeline = path_inside(model_dir, name, "model")
    refuse_links_outside(model_dir, pipeline)
    _refuse_config_paths(model_dir, pipeline)
    return pipeline


def _refuse_config_paths(model_dir: str | Path, pipeline: Path) -> None:
    """Refuse a pipeline whose config, in the sections ``spacy.load`` reads (``[nlp]``,
    ``[components]``), names a local path outside the model directory."""
    from training.manifest import resolve_inside

    for key, value in _config_strings(pipeline):
        if _opens_local_path(key, value):
            resolve_inside(model_dir, value, f"pipeline config {key} = {value!r}:")


def _config_strings(pipeline: Path) -> list[tuple[str, str]]:
    """(dotted key, value) of every string under ``[nlp]`` and ``[components]``, with the
    config's ``${...}`` references filled in as spaCy fills them when it loads."""
    from spacy.util import load_config

    cfg = pipeline / "config.cfg"
    if not cfg.is_file():
        return []  # spaCy refuses the directory itself
    config = load_config(cfg, interpolate=True)
    return [kv for section in ("nlp", "components")
            for kv in _strings(config.get(section, {}), section)]


def _strings(node: Any, key: str) -> list[tuple[str, str]]:
    """Every string leaf of a config section with its dotted key: a path can sit at any depth
    (a component's sub-block, a list of sources)."""
    if isinstance(node, dict):
        return [kv for k, v in node.items() for kv in _strings(v, f"{key}.{k}")]
    if isinstance(node, list | tuple):
        return [kv for i, v in enumerate(node) for kv in _strings(v, f"{key}[{i}]")]
    return [(key, node)] if isinstance(node, str) else []


def _opens_local_path(key: str, value: str) -> bool:
    """Whether spaCy or a component would open ``value`` as a local file or directory: a
    sourced component that is no installed package, or a string that reads as a path and
    exists (registry names such as ``spacy.Tok2Vec.v2`` have no separator)."""
    import spacy

    if key.endswith(".source"):
        return not spacy.util.is_package(value)
    looks_like_path = "/" in value or "\\" in value or value.startswith("~")
    return looks_like_path and os.path.lexists(Path(value).expanduser())


class SpacyTagger:
    """A spaCy pipeline's entities as companies: the zero-shot baseline (the small English
    pipeline, ``ORG``) or a pipeline trained for ``Company`` (``tickertag train spacy``).

    ``model`` in the manifest is an installed pipeline's name or a directory inside the model
    directory (so the directory can move)."""

    kind = "spacy"

    def __init__(self, model_dir: str, manifest: dict[str, Any]) -> None:
        import spacy

        self.nlp = spacy.load(spacy_pipeline(model_dir, manifest))
        self.labels = frozenset(manifest.get("entity_labels", ["ORG"]))
        self.threshold = 0.0  # spaCy's NER gives no scores

    def predict(self, texts: list[str], threshold: float | None = None,
                batch_size: int = 32) -> list[list[Span]]:
        from training.spacy_trainer import predict_spans

        return predict_spans(self.nlp, texts, batch_size, self.labels)
