"""The spaCy student's recipe in spaCy's own terms: a ``config.cfg`` and ``.spacy`` corpora that
``python -m spacy train`` trains, and the way back to a tickertag model directory.

Why: spaCy users read, change and package a pipeline through its config and its training loop,
not through ``training/spacy_trainer.py``. The config is rendered from the same TOML recipe
(``training/configs/student.toml``) with the same architecture blocks (``blank_ner``), so the
two cannot describe different models; ``training/configs/student.cfg`` is that rendering,
checked against it by a test. The corpora hold the rows the custom loop trains and selects on
(``prepare_run``: labelled files first, valid headlines out of training), with the spans that
cut a spaCy token left out, as the custom loop leaves them out.

What spaCy's loop does differently, on purpose (it is spaCy's idiom): the batch-size schedule
runs across epochs instead of restarting each epoch, and the pipeline is evaluated every
``eval_frequency`` steps (about once an epoch here) by its own ``ents_f`` on the dev corpus.
``import_pipeline`` scores the chosen pipeline with the project's one scorer on the raw valid
rows, so both loops are compared on the same figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.spans import LABEL
from training.config import TrainConfig

CONFIG_NAME = "config.cfg"
TRAIN_CORPUS = "train.spacy"
DEV_CORPUS = "dev.spacy"


def _schedule(batcher: dict[str, Any], headlines: int, epochs: int) -> tuple[int, int]:
    """``(eval_frequency, max_steps)`` for ``epochs`` passes over ``headlines`` under the
    config's own batcher, whose size schedule carries on across epochs: its steps are counted by
    running it, and ``max_steps`` ends the run on an evaluation.

    Why: spaCy evaluates after step 0 and then whenever ``step % eval_frequency == 0``, and never
    after the last step; with ``eval_frequency`` at one epoch's steps a one-epoch run was scored
    only at step 0, so ``model-best`` was the untrained pipeline. Here the run has ``epochs``
    evaluations after step 0 (about one an epoch, as the custom loop scores each epoch), the
    last on the final step (at most ``epochs - 1`` trailing steps are dropped for it)."""
    from spacy.util import registry

    batches = registry.resolve({"b": batcher})["b"]
    steps = sum(sum(1 for _ in batches(range(headlines))) for _ in range(epochs))
    every = max((steps - 1) // epochs, 1)
    return every, every * epochs


def spacy_config(cfg: TrainConfig, train_headlines: int | None = None) -> Any:
    """spaCy's ``Config`` for a ``kind = "spacy"``, ``start = "blank"`` recipe: the blank
    pipeline's own ``[nlp]`` and ``[components]`` blocks, and ``[training]`` set from the
    recipe (epochs, seed, dropout, the compounding batch schedule, averaged weights); with
    ``train_headlines``, evaluations placed by ``_schedule`` (the shipped ``student.cfg``, made
    without rows, evaluates every 200 steps)."""
    from training.spacy_parts import blank_ner

    o = cfg.spacy
    if cfg.kind != "spacy" or o.start != "blank":
        raise ValueError(f"spaCy's own loop renders blank spaCy recipes; this one is kind "
                         f"{cfg.kind!r}, start {o.start!r}")
    config = blank_ner(o).config.copy()
    epochs = int(cfg.epochs or 1)
    batcher = {"@batchers": "spacy.batch_by_sequence.v1", "get_length": None,
               "size": {"@schedules": "compounding.v1", "start": o.batch_start,
                        "stop": float(cfg.batch_size or 32), "compound": o.batch_growth,
                        "t": 0.0}}
    every, max_steps = _schedule(batcher, train_headlines, epochs) if train_headlines else (200, 0)
    config["paths"]["train"] = TRAIN_CORPUS
    config["paths"]["dev"] = DEV_CORPUS
    config["system"]["seed"] = cfg.seed
    t = config["training"]
    t.update({"dropout": o.dropout, "max_epochs": epochs, "max_steps": max_steps,
              "patience": 0, "eval_frequency": every, "batcher": batcher})
    t["optimizer"]["use_averages"] = o.averages
    if cfg.learning_rate:
        t["optimizer"]["learn_rate"] = cfg.learning_rate
    return config


def write_corpus(nlp: Any, rows: list[dict], path: Path) -> int:
    """Rows as a ``DocBin`` of ``Company`` entities; returns how many spans were left out
    because they cut a spaCy token (the custom loop cannot learn them either)."""
    from spacy.tokens import DocBin

    from training.spacy_parts import aligned_spans

    db, dropped = DocBin(store_user_data=False), 0
    for r in rows:
        doc = nlp.make_doc(r["text"])
        kept, n = aligned_spans(doc, r)
        dropped += n
        try:
            doc.ents = kept
        except ValueError:  # overlapping spans: keep the first of each overlap
            doc.ents = _non_overlapping(kept)
        db.add(doc)
    db.to_disk(path)
    return dropped


def _non_overlapping(spans: list[Any]) -> list[Any]:
    out: list[Any] = []
    for s in sorted(spans, key=lambda s: (s.start, -len(s))):
        if not out or s.start >= out[-1].end:
            out.append(s)
    return out


def export_project(cfg: TrainConfig, out_dir: str | Path) -> dict[str, Any]:
    """Write ``config.cfg``, ``train.spacy`` and ``dev.spacy`` to ``out_dir`` (relative paths
    inside the config, so the folder moves whole) and return what was written."""
    import spacy

    from training.data import recipe_rows

    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    train_rows, valid_rows = recipe_rows(cfg)
    if not valid_rows:
        raise ValueError("spaCy's loop selects the pipeline on a dev corpus: give the recipe "
                         "a valid file")
    config = spacy_config(cfg, len(train_rows))
    config.to_disk(d / CONFIG_NAME)
    nlp = spacy.blank("en")
    dropped = write_corpus(nlp, train_rows, d / TRAIN_CORPUS)
    write_corpus(nlp, valid_rows, d / DEV_CORPUS)
    return {"config": str(d / CONFIG_NAME), "train_headlines": len(train_rows),
            "valid_headlines": len(valid_rows), "spans_dropped": dropped,
            "eval_frequency": config["training"]["eval_frequency"],
            "max_steps": config["training"]["max_steps"],
            "command": f"python -m spacy train {d / CONFIG_NAME} --output {d / 'output'} "
                       f"--paths.train {d / TRAIN_CORPUS} --paths.dev {d / DEV_CORPUS}"}


def import_pipeline(pipeline: str | Path, out_dir: str | Path, cfg: TrainConfig,
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Copy a pipeline ``spacy train`` wrote (``model-best``) into a tickertag model directory
    that ``predict``, ``serve`` and the ``ner`` queue take, scored on the recipe's valid rows
    with the project's scorer (``valid_f1`` in its manifest); ``extra`` adds what the caller
    knows of the run (its history, time, rows)."""
    import shutil

    import spacy

    from common.metrics import score
    from training.card import refresh_model_card
    from training.data import recipe_valid_rows, spans_of
    from training.manifest import write_manifest
    from training.registry import family
    from training.spacy_parts import PIPELINE_DIR, predict_spans

    out = Path(out_dir)
    if (out / PIPELINE_DIR).exists():
        shutil.rmtree(out / PIPELINE_DIR)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(pipeline, out / PIPELINE_DIR)
    valid_rows = recipe_valid_rows(cfg)
    f1 = None
    if valid_rows:
        nlp = spacy.load(out / PIPELINE_DIR)
        pred = predict_spans(nlp, [r["text"] for r in valid_rows])
        f1 = score([spans_of(r) for r in valid_rows], pred).f1
    manifest = {"kind": "spacy", "family": family("spacy").name, "model": PIPELINE_DIR,
                "entity_labels": [LABEL], "threshold": 0.0,
                "valid_f1": f1,
                "trained_by": "python -m spacy train", "config": cfg.model_dump(),
                **(extra or {})}
    manifest = write_manifest(out, manifest)
    refresh_model_card(out)  # README.md with the Hub's metadata, as the custom loop writes it
    return manifest
