"""Fine-tune SpanMarker with its own Trainer; keep the best epoch by the project's scorer.

SpanMarker's ``Trainer.evaluate`` loads seqeval from the Hub, which fails offline, so no eval
dataset is given to it: the per-epoch valid F1 comes from ``training.selection`` instead. Inputs
are pre-tokenised with ``common.tokens.tokenize`` (the same words for training and prediction)
and word indices are mapped back to character spans.

A saved SpanMarker ``config.json`` records the encoder's path and reads the encoder config and
tokenizer from it at load time, so a directory moved to another machine fails. So the trainer also writes the
encoder's config and tokenizer (no weights, ~1 MB) to ``<dir>/encoder`` and the loader points the
config there: the directory loads offline on any machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.spans import LABEL, Span
from common.tokens import IOB_LABELS, to_spanmarker, tokenize
from training.config import TrainConfig
from training.data import spans_of
from training.encoders import LOCAL_ENCODER, device, resolve_encoder
from training.selection import EpochSelector, Progress, finish, last_checkpoint, prepare_run

ENCODER_STUB = "encoder"


def is_spanmarker_dir(path: str | Path) -> bool:
    cfg = Path(path) / "config.json"
    return cfg.exists() and "span_marker" in cfg.read_text()


def load_spanmarker(model_dir: str | Path) -> Any:
    """Load a saved model offline. The encoder path in its config is repointed to the
    directory's own ``encoder/`` stub, or (older dirs) to the packaged encoder when the recorded
    path does not exist here."""
    from span_marker import SpanMarkerConfig, SpanMarkerModel

    d = Path(model_dir)
    cfg = SpanMarkerConfig.from_pretrained(str(d), local_files_only=True)
    if (d / ENCODER_STUB / "config.json").exists():
        cfg.encoder["_name_or_path"] = str((d / ENCODER_STUB).resolve())
    elif cfg.encoder.get("_name_or_path", "").startswith("/") and \
            not Path(cfg.encoder["_name_or_path"]).exists():
        cfg.encoder["_name_or_path"] = resolve_encoder(LOCAL_ENCODER)
    model = SpanMarkerModel.from_pretrained(str(d), config=cfg, local_files_only=True)
    return model.to(device()).eval()


def save_spanmarker(model: Any, out: Path, encoder_src: str) -> None:
    """``save_pretrained`` plus the encoder stub that makes the directory self-contained."""
    from transformers import AutoConfig, AutoTokenizer

    model.save_pretrained(str(out))
    stub = out / ENCODER_STUB
    if not (stub / "config.json").exists():
        AutoConfig.from_pretrained(encoder_src).save_pretrained(str(stub))
        AutoTokenizer.from_pretrained(encoder_src).save_pretrained(str(stub))


def predict_spans(model: Any, texts: list[str], threshold: float = 0.5,
                  batch_size: int = 32) -> list[list[Span]]:
    """Character spans with scores; SpanMarker predicts word indices over our tokens."""
    import torch

    toks = [tokenize(t) for t in texts]
    keep = [i for i, tk in enumerate(toks) if tk]
    out: list[list[Span]] = [[] for _ in texts]
    if not keep:
        return out
    with torch.inference_mode():
        preds = model.predict([[w for w, _, _ in toks[i]] for i in keep], batch_size=batch_size,
                              show_progress_bar=False)
    for i, ents in zip(keep, preds, strict=True):
        t, tk = texts[i], toks[i]
        spans = []
        for e in ents:  # word_end_index is exclusive
            if e["score"] < threshold:
                continue
            s, end = tk[e["word_start_index"]][1], tk[e["word_end_index"] - 1][2]
            spans.append(Span(start=s, end=end, label=LABEL, text=t[s:end], score=float(e["score"])))
        out[i] = sorted(spans, key=lambda x: x.start)
    return out


def build_model(cfg: TrainConfig) -> tuple[Any, str]:
    """A SpanMarker to fine-tune and the encoder source its stub is copied from."""
    from span_marker import SpanMarkerModel

    if Path(cfg.base).is_dir() and is_spanmarker_dir(cfg.base):
        stub = Path(cfg.base) / ENCODER_STUB
        return load_spanmarker(cfg.base), str(stub if stub.exists() else resolve_encoder(LOCAL_ENCODER))
    if "span-marker" in cfg.base or "span_marker" in cfg.base:  # a hub SpanMarker model
        model = SpanMarkerModel.from_pretrained(cfg.base)
        return model, model.config.encoder["_name_or_path"]
    enc = resolve_encoder(cfg.base)
    model = SpanMarkerModel.from_pretrained(
        enc, labels=IOB_LABELS, model_max_length=cfg.model_max_length,
        marker_max_length=cfg.model_max_length, entity_max_length=cfg.entity_max_length)
    return model, enc


def train_spanmarker(cfg: TrainConfig, on_progress: Progress | None = None) -> dict[str, Any]:
    """Train, keep the best epoch by valid F1, tune the threshold, save a self-contained dir."""
    from datasets import Dataset
    from span_marker import Trainer
    from transformers import TrainingArguments

    out, train_rows, valid_rows = prepare_run(cfg, "models/spanmarker")
    model, encoder_src = build_model(cfg)
    model = model.to(device())

    def predict(texts: list[str], thr: float) -> list[list[Span]]:
        model.eval()
        try:
            return predict_spans(model, texts, thr)
        finally:
            model.train()

    selector = EpochSelector(out, int(cfg.epochs or 1), valid_rows, cfg.threshold, predict,
                             lambda d: save_spanmarker(model, d, encoder_src), on_progress,
                             cfg.resume)
    ds = Dataset.from_list([to_spanmarker(r["text"], spans_of(r)) for r in train_rows])
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"), learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size, num_train_epochs=cfg.epochs,
        warmup_ratio=cfg.warmup_ratio, weight_decay=cfg.weight_decay,
        save_strategy="epoch" if cfg.save_checkpoints else "no", save_total_limit=1,
        logging_steps=20, report_to="none", use_cpu=device() == "cpu",
        dataloader_num_workers=0, seed=cfg.seed,
    )
    trainer = Trainer(model=model, args=args, train_dataset=ds, callbacks=[selector.callback()])
    trainer.train(resume_from_checkpoint=last_checkpoint(out) if cfg.resume else None)
    best = load_spanmarker(out)
    return finish(out, "spanmarker", selector, lambda texts, thr: predict_spans(best, texts, thr),
                  cfg.model_dump(), len(train_rows), device())
