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
from training.manifest import write_manifest

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
    return write_manifest(out, manifest)




def build_spacy(output: str, model: str = SPACY_SMALL) -> dict:
    """Write a spaCy baseline directory (the pipeline itself is an installed package)."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"kind": "spacy", "model": model, "entity_labels": ["ORG"], "threshold": 0.0}
    return write_manifest(out, manifest)


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
    directory (so the directory can move).

    Memory stays bounded however many new words the headlines bring: calls run inside
    ``nlp.memory_zone()`` once the first ``warm_texts`` texts have warmed the tokenizer's
    cache, and the pipeline is rebuilt from its bytes as loaded after ``rebuild_after`` new
    strings (why each: ``predict`` and the notes below)."""

    kind = "spacy"
    # Why rebuild as well as the zone: the zone frees each new string and lexeme, but spaCy's
    # hash tables keep a tombstone for each and double when full of them, ~16-32 bytes per new
    # string for ever (+80 MB per million headlines of all-new names). After 200k new strings
    # the tables are at most about twice their loaded size; a rebuild (~0.5 s) starts them
    # afresh: once per ~55k headlines of all-new names, far less often on real news.
    rebuild_after = 200_000
    # Why warm: inside a zone the tokenizer caches nothing, and without its cache of common
    # words tokenizing took 3x as long and the whole pipeline 15% longer. The first 2,000
    # texts after load or a rebuild are tagged outside the zone to fill the cache with the
    # words of the traffic itself; their new strings (~9k for 2,000 headlines of all-new
    # names, ~3 MB) stay until the next rebuild and count towards it.
    warm_texts = 2_000

    def __init__(self, model_dir: str, manifest: dict[str, Any]) -> None:
        import spacy

        from training.spacy_ops import tagging_ops

        with tagging_ops():  # the faster matrix-product kernel here (training/spacy_ops.py)
            self.nlp = spacy.load(spacy_pipeline(model_dir, manifest))
        # the pipeline as loaded, kept in memory rather than read again from the directory,
        # which may hold another model by the time of a rebuild
        self._pristine = (self.nlp.config, self.nlp.to_bytes())
        self.new_strings = 0  # since load or the last rebuild, warm-up included
        self.warm_left = self.warm_texts  # texts still to tag outside a zone
        self.labels = frozenset(manifest.get("entity_labels", ["ORG"]))
        self.threshold = 0.0  # spaCy's NER gives no scores

    def predict(self, texts: list[str], threshold: float | None = None,
                batch_size: int = 32) -> list[list[Span]]:
        """Spans of ``texts``, tagged inside ``nlp.memory_zone()`` after the warm-up.

        Why the zone: outside it every new word a headline brings (a name, a ticker, a price)
        stays for the life of the process in the pipeline's ``StringStore``, its lexeme table
        and its tokenizer cache: ~5 MB per 24k headlines of fresh vocabulary, never given back,
        in ``tickertag serve`` and in every ``ner`` worker. Inside the zone those additions are
        transient and freed when it closes, so the vocabulary stays at its size after the
        warm-up. The spans are plain Python values built inside the zone, so nothing returned
        points at a freed string, and predictions are unchanged: the zone changes where new
        strings are kept, not what the model computes. A caller already inside a zone keeps
        its own (zones must not nest) and its own memory."""
        from training.spacy_parts import predict_spans

        nlp = self.nlp
        if nlp.vocab.in_memory_zone:
            return predict_spans(nlp, texts, batch_size, self.labels)
        before = len(nlp.vocab.strings)
        if self.warm_left > 0:
            spans = predict_spans(nlp, texts, batch_size, self.labels)
            self.warm_left -= len(texts)
            self.new_strings += len(nlp.vocab.strings) - before
        else:
            with nlp.memory_zone():
                spans = predict_spans(nlp, texts, batch_size, self.labels)
                self.new_strings += len(nlp.vocab.strings) - before
        if self.new_strings >= self.rebuild_after:
            self.rebuild()
        return spans

    def rebuild(self) -> None:
        """Replace the pipeline by a fresh one built from its bytes as loaded: the same model,
        with hash tables of their loaded size."""
        from spacy.util import load_model_from_config

        from training.spacy_ops import tagging_ops

        config, data = self._pristine
        # built beside the old one and then swapped: a failed build leaves a working tagger
        with tagging_ops():
            self.nlp = load_model_from_config(config).from_bytes(data)
        self.new_strings, self.warm_left = 0, self.warm_texts
        _give_back_freed_memory()


def _give_back_freed_memory() -> None:
    """Free the old pipeline now (its reference cycles) and hand the freed heap back to the
    system (glibc's ``malloc_trim``): glibc would keep it for reuse, and the process stayed
    ~30 MB above its loaded size after the first rebuilds. A C library without that call
    keeps it; nothing else changes."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
