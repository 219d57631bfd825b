"""Dispatch a TrainConfig to its trainer (the CLI and the Celery train queue share this)."""

from __future__ import annotations

from typing import Any

from training.config import TrainConfig
from training.selection import Progress


def run_training(cfg: TrainConfig, on_progress: Progress | None = None) -> dict[str, Any]:
    """Train the model ``cfg.kind`` names; returns the manifest written next to it."""
    if cfg.kind == "gliner":
        from training.gliner_trainer import train_gliner

        return train_gliner(cfg, on_progress)
    if cfg.kind == "spacy":
        from training.spacy_trainer import train_spacy

        return train_spacy(cfg, on_progress)
    from training.spanmarker_trainer import train_spanmarker

    return train_spanmarker(cfg, on_progress)
