"""Fine-tune GLiNER with its own Trainer; pick the best epoch by exact-span F1 on valid.

The valid F1 comes from ``common.metrics`` (the project's one scorer), computed on character
spans predicted by the same inference path ``tickertag predict`` uses, so the number that
selects the checkpoint is the number the report shows.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.metrics import score
from training.config import TrainConfig
from training.data import read_jsonl, spans_of, subset
from training.encoders import LOCAL_ENCODER, device, resolve_encoder

log = logging.getLogger(__name__)
MANIFEST = "tickertag.json"
Progress = Callable[[dict[str, Any]], None]


def build_model(cfg: TrainConfig):
    """A GLiNER to fine-tune: fresh on an encoder, or a pretrained GLiNER (hub id or dir)."""
    from gliner import GLiNER, GLiNERConfig

    base = cfg.base
    is_encoder = base == LOCAL_ENCODER or (
        Path(base).is_dir() and not (Path(base) / "gliner_config.json").exists()
    )
    if is_encoder:
        gcfg = GLiNERConfig(model_name=resolve_encoder(base), max_width=cfg.max_width,
                            max_len=cfg.max_len, span_mode="markerV0")
        return GLiNER.from_config(gcfg, map_location=device())
    return GLiNER.from_pretrained(base, local_files_only=Path(base).exists(),
                                  map_location=device())


def gliner_examples(rows: list[dict], label: str) -> list[dict]:
    from common.tokens import to_gliner

    return [to_gliner(r["text"], spans_of(r), label=label) for r in rows]


def predict_spans(model, texts: list[str], label: str, threshold: float, batch_size: int = 32):
    """Character spans for each text (label normalised to the project's ``Company``)."""
    from common.spans import LABEL, Span

    out = model.inference(texts, labels=[label], threshold=threshold, batch_size=batch_size,
                          flat_ner=True)
    return [[Span(start=e["start"], end=e["end"], label=LABEL, text=t[e["start"]:e["end"]],
                  score=float(e["score"])) for e in ents] for t, ents in zip(texts, out, strict=True)]


def best_threshold(model, rows: list[dict], label: str) -> tuple[float, float]:
    """Pick the decision threshold that maximises valid F1 (spans scored once, cut many times)."""
    texts = [r["text"] for r in rows]
    gold = [spans_of(r) for r in rows]
    low = predict_spans(model, texts, label, 0.05)
    best = (0.5, -1.0)
    for thr in [x / 20 for x in range(2, 19)]:
        pred = [[s for s in p if s.score >= thr] for p in low]
        f = score(gold, pred).f1
        if f > best[1] + 1e-9:
            best = (thr, f)
    return best


def train_gliner(cfg: TrainConfig, on_progress: Progress | None = None) -> dict[str, Any]:
    """Train, keep the best epoch by valid F1, tune the threshold, save a self-contained dir."""
    import torch
    from gliner.training import Trainer, TrainingArguments
    from transformers import TrainerCallback

    torch.manual_seed(cfg.seed)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    train_rows = subset([r for p in cfg.train for r in read_jsonl(p)], cfg.max_train, cfg.seed)
    valid_rows = subset(read_jsonl(cfg.valid), cfg.max_valid, cfg.seed) if cfg.valid else []
    model = build_model(cfg)
    state: dict[str, Any] = {"best_f1": -1.0, "epoch": 0, "history": []}
    t0 = time.time()

    class EvalEachEpoch(TrainerCallback):
        def on_epoch_end(self, args, tr_state, control, **kw):
            state["epoch"] += 1
            rec: dict[str, Any] = {"epoch": state["epoch"], "step": tr_state.global_step,
                                   "elapsed_s": round(time.time() - t0, 1)}
            losses = [h["loss"] for h in tr_state.log_history if "loss" in h]
            if losses:
                rec["loss"] = round(losses[-1], 4)
            if valid_rows:
                model.eval()
                with torch.inference_mode():
                    pred = predict_spans(model, [r["text"] for r in valid_rows], cfg.label,
                                         cfg.threshold)
                model.train()
                rec["valid_f1"] = round(score([spans_of(r) for r in valid_rows], pred).f1, 4)
                if rec["valid_f1"] > state["best_f1"]:
                    state["best_f1"] = rec["valid_f1"]
                    model.save_pretrained(str(out))
                    rec["saved"] = True
            state["history"].append(rec)
            log.info("epoch %s: %s", state["epoch"], rec)
            print(f"[tickertag] epoch {rec['epoch']}/{cfg.epochs} " + " ".join(
                f"{k}={v}" for k, v in rec.items() if k != "epoch"), flush=True)
            if on_progress:
                on_progress({"status": "training", "epochs": cfg.epochs, **rec})

    use_cpu = device() == "cpu"
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"), learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay, others_lr=cfg.others_lr,
        others_weight_decay=cfg.weight_decay, lr_scheduler_type="linear",
        warmup_ratio=cfg.warmup_ratio, per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size, focal_loss_alpha=cfg.focal_loss_alpha,
        focal_loss_gamma=cfg.focal_loss_gamma, num_train_epochs=cfg.epochs,
        save_strategy="epoch", save_total_limit=1, logging_steps=20, report_to="none",
        use_cpu=use_cpu, dataloader_num_workers=0, seed=cfg.seed, bf16=False,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=gliner_examples(train_rows, cfg.label),
        tokenizer=model.data_processor.transformer_tokenizer,
        data_collator=model._create_data_collator(), callbacks=[EvalEachEpoch()],
    )
    ckpts = sorted((out / "checkpoints").glob("checkpoint-*"))
    trainer.train(resume_from_checkpoint=str(ckpts[-1]) if cfg.resume and ckpts else None)
    if not valid_rows:
        model.save_pretrained(str(out))
    from gliner import GLiNER

    best = GLiNER.from_pretrained(str(out), local_files_only=True, map_location=device())
    thr, thr_f1 = best_threshold(best, valid_rows, cfg.label) if valid_rows else (cfg.threshold, None)
    manifest = {
        "kind": "gliner", "label": cfg.label, "threshold": thr, "valid_f1": thr_f1,
        "best_epoch_valid_f1": state["best_f1"] if valid_rows else None,
        "history": state["history"], "train_headlines": len(train_rows),
        "train_seconds": round(time.time() - t0, 1), "device": device(),
        "config": cfg.model_dump(),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    if on_progress:
        on_progress({"status": "done", "valid_f1": thr_f1, "threshold": thr})
    return manifest
