"""Dispatch a TrainConfig to its trainer (the CLI and the Celery train queue share this); the
trainer of each kind is named in ``training.registry``."""

from __future__ import annotations

from typing import Any

from training.config import TrainConfig
from training.selection import Progress


def run_training(cfg: TrainConfig, on_progress: Progress | None = None) -> dict[str, Any]:
    """Train the model ``cfg.kind`` names; returns the manifest written next to it."""
    from training.registry import trainer

    return trainer(cfg.kind)(cfg, on_progress)
