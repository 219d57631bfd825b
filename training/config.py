"""Training configuration: a TOML / YAML / JSON file (``--config``) plus CLI overrides."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from common.settings import LABELED_DIR, REPO_ROOT


class TrainConfig(BaseModel):
    """Everything that determines a training run (saved next to the model)."""

    kind: Literal["gliner", "spanmarker"] = "gliner"
    # Start point: "local:minilm" (a fresh model on the packaged encoder, offline), a hub id
    # (e.g. EmergentMethods/gliner_medium_news-v2.1, tomaarsen/span-marker-bert-base-orgs) or a
    # local model directory.
    base: str = "local:minilm"
    train: list[str] = Field(default_factory=lambda: [str(LABELED_DIR / "benzinga_gold_train.jsonl")])
    valid: str | None = str(LABELED_DIR / "benzinga_gold_valid.jsonl")
    output: str = str(REPO_ROOT / "models" / "gliner")
    max_train: int | None = None
    max_valid: int | None = None
    epochs: int = 10
    batch_size: int = 8
    learning_rate: float = 5e-5
    others_lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    focal_loss_alpha: float = 0.75
    focal_loss_gamma: float = 2.0
    max_width: int = 12
    max_len: int = 128
    threshold: float = 0.5
    label: str = "company"  # the entity type GLiNER is prompted with
    seed: int = 42
    resume: bool = False

    @classmethod
    def from_file(cls, path: str | Path | None, **overrides) -> TrainConfig:
        data: dict = {}
        if path:
            p = Path(path)
            text = p.read_text()
            if p.suffix == ".toml":
                data = tomllib.loads(text)
            elif p.suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text) or {}
            else:
                data = json.loads(text)
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**data)
