"""Fine-tune SpanMarker with its own Trainer; select the epoch by the project's scorer.

SpanMarker's ``Trainer.evaluate`` loads seqeval from the Hub, which fails offline, so
evaluation runs in a callback through ``common.metrics`` instead. Inputs are pre-tokenised with
``common.tokens.tokenize`` (the same words for training and prediction) and word indices are
mapped back to character spans.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from common.metrics import score
from common.spans import LABEL, Span
from common.tokens import IOB_LABELS, to_spanmarker, tokenize
from training.config import TrainConfig
from training.data import read_jsonl, spans_of, subset
from training.encoders import LOCAL_ENCODER, device, resolve_encoder
from training.gliner_trainer import MANIFEST, Progress


def load_spanmarker(model_dir: str):
    """Load a saved model offline; the encoder path recorded in its config is repointed when
    it does not exist here (a model trained on another machine)."""
    from span_marker import SpanMarkerConfig, SpanMarkerModel

    cfg = SpanMarkerConfig.from_pretrained(model_dir, local_files_only=True)
    enc = cfg.encoder.get("_name_or_path", "")
    if enc and not Path(enc).exists() and "/" in enc and enc.startswith("/"):
        cfg.encoder["_name_or_path"] = resolve_encoder(LOCAL_ENCODER)
    return SpanMarkerModel.from_pretrained(model_dir, config=cfg, local_files_only=True).to(device())


def predict_spans(model, texts: list[str], threshold: float = 0.5,
                  batch_size: int = 32) -> list[list[Span]]:
    toks = [tokenize(t) for t in texts]
    keep = [i for i, tk in enumerate(toks) if tk]
    out: list[list[Span]] = [[] for _ in texts]
    if not keep:
        return out
    preds = model.predict([[w for w, _, _ in toks[i]] for i in keep], batch_size=batch_size,
                          show_progress_bar=False)
    for i, ents in zip(keep, preds, strict=True):
        t, tk = texts[i], toks[i]
        spans = []
        for e in ents:
            if e["score"] < threshold:
                continue
            s, end = tk[e["word_start_index"]][1], tk[e["word_end_index"] - 1][2]
            spans.append(Span(start=s, end=end, label=LABEL, text=t[s:end], score=float(e["score"])))
        out[i] = spans
    return out


def train_spanmarker(cfg: TrainConfig, on_progress: Progress | None = None) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from span_marker import SpanMarkerModel, Trainer
    from transformers import TrainerCallback, TrainingArguments

    torch.manual_seed(cfg.seed)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    train_rows = subset([r for p in cfg.train for r in read_jsonl(p)], cfg.max_train, cfg.seed)
    valid_rows = subset(read_jsonl(cfg.valid), cfg.max_valid, cfg.seed) if cfg.valid else []
    if cfg.base == LOCAL_ENCODER or not (Path(cfg.base) / "config.json").exists() or \
            "span_marker" not in (Path(cfg.base) / "config.json").read_text():
        model = SpanMarkerModel.from_pretrained(
            resolve_encoder(cfg.base), labels=IOB_LABELS, model_max_length=64,
            marker_max_length=64, entity_max_length=8)
    else:
        model = load_spanmarker(cfg.base)
    model = model.to(device())
    ds = Dataset.from_list([to_spanmarker(r["text"], spans_of(r)) for r in train_rows])
    state: dict[str, Any] = {"best_f1": -1.0, "epoch": 0, "history": []}
    t0 = time.time()

    class EvalEachEpoch(TrainerCallback):
        def on_epoch_end(self, args, tr_state, control, **kw):
            state["epoch"] += 1
            rec: dict[str, Any] = {"epoch": state["epoch"], "step": tr_state.global_step,
                                   "elapsed_s": round(time.time() - t0, 1)}
            if valid_rows:
                model.eval()
                pred = predict_spans(model, [r["text"] for r in valid_rows], cfg.threshold)
                model.train()
                rec["valid_f1"] = round(score([spans_of(r) for r in valid_rows], pred).f1, 4)
                if rec["valid_f1"] > state["best_f1"]:
                    state["best_f1"] = rec["valid_f1"]
                    model.save_pretrained(str(out))
                    rec["saved"] = True
            state["history"].append(rec)
            print(f"[tickertag] epoch {rec['epoch']}/{cfg.epochs} " + " ".join(
                f"{k}={v}" for k, v in rec.items() if k != "epoch"), flush=True)
            if on_progress:
                on_progress({"status": "training", "epochs": cfg.epochs, **rec})

    args = TrainingArguments(
        output_dir=str(out / "checkpoints"), learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size, num_train_epochs=cfg.epochs,
        warmup_ratio=cfg.warmup_ratio, weight_decay=cfg.weight_decay, save_strategy="epoch",
        save_total_limit=1, logging_steps=20, report_to="none", use_cpu=device() == "cpu",
        dataloader_num_workers=0, seed=cfg.seed,
    )
    trainer = Trainer(model=model, args=args, train_dataset=ds, callbacks=[EvalEachEpoch()])
    ckpts = sorted((out / "checkpoints").glob("checkpoint-*"))
    trainer.train(resume_from_checkpoint=str(ckpts[-1]) if cfg.resume and ckpts else None)
    if not valid_rows:
        model.save_pretrained(str(out))
    best = load_spanmarker(str(out))
    thr, thr_f1 = cfg.threshold, None
    if valid_rows:
        low = predict_spans(best, [r["text"] for r in valid_rows], 0.05)
        gold = [spans_of(r) for r in valid_rows]
        thr, thr_f1 = max(((x / 20, score(gold, [[s for s in p if s.score >= x / 20]
                                                    for p in low]).f1) for x in range(2, 19)),
                          key=lambda tf: tf[1])
    manifest = {
        "kind": "spanmarker", "threshold": thr, "valid_f1": thr_f1,
        "best_epoch_valid_f1": state["best_f1"] if valid_rows else None,
        "history": state["history"], "train_headlines": len(train_rows),
        "train_seconds": round(time.time() - t0, 1), "device": device(),
        "config": cfg.model_dump(),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    if on_progress:
        on_progress({"status": "done", "valid_f1": thr_f1, "threshold": thr})
    return manifest
