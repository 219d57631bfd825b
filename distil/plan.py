"""What a distillation run is asked to do (``DistilPlan``) and the defaults it starts from: the
labelled files, the student's config, the step names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common.paths import CONFIGS_DIR, LABELED_DIR, POOL_CSV, home

STEPS = ("pool", "silver", "student")
STUDENT_CONFIG = str(CONFIGS_DIR / "student.toml")
LABELLED_TRAIN = [str(LABELED_DIR / f) for f in (
    "benzinga_gold_train.jsonl", "benzinga_llm_train.jsonl", "benzinga_llm_extra_train.jsonl")]
LABELLED_VALID = [str(LABELED_DIR / f) for f in (
    "benzinga_gold_valid.jsonl", "benzinga_llm_extra_valid.jsonl")]

Say = Callable[[str], None]


@dataclass
class DistilPlan:
    teachers: list[str]
    pool: str = str(POOL_CSV)
    output: str = field(default_factory=lambda: str(home() / "models" / "student"))
    work: str | None = None  # default: var/distil/<output's name>
    student: str = "spacy"
    # a TrainConfig file (default for spaCy: training/configs/student.toml); the plan's fields
    # below override it
    student_config: str | None = None
    epochs: int | None = None
    max_silver: int | None = None  # a seeded subset of the silver set (the silver-size curve)
    pool_limit: int | None = None  # read at most this many distinct pool headlines
    workers: int = 2  # local ner worker processes to start (0: use workers already running)
    min_votes: int | None = None
    # Agreement filter: leave the headlines where the teachers disagree out of the student's
    # training set instead of teaching it the vote's half-guess (those are review material).
    # On by default: valid chose it (0.942 vs 0.937, training/RESULTS.md, 2026-12-04, 98b2cd5).
    drop_contested: bool = True
    labelled: list[str] = field(default_factory=lambda: list(LABELLED_TRAIN))
    valid: list[str] = field(default_factory=lambda: list(LABELLED_VALID))
    seed: int = 42

    @property
    def work_dir(self) -> Path:
        return Path(self.work or home() / "var" / "distil" / Path(self.output).name)
