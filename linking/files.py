"""The labelled files an alias table is built from and the ones it is measured on; the held-out
files never build a table."""

from __future__ import annotations

from pathlib import Path

from common.paths import LABELED_DIR
from training.silver import protected_texts

DEFAULT_TABLE = "models/aliases.json"
SILVER = Path("var/distil/student/silver.jsonl")
TRAIN_INPUTS = [LABELED_DIR / "benzinga_gold_train.jsonl", LABELED_DIR / "benzinga_llm_train.jsonl",
                LABELED_DIR / "benzinga_llm_extra_train.jsonl"]
TEST_FILES = [LABELED_DIR / "benzinga_gold_test.jsonl", LABELED_DIR / "benzinga_gold_test2.jsonl"]
# Never inputs, and their titles are dropped from any input: the gold test files and the
# LLM-labelled test file (same 2019-2020 band).
HELD_OUT_FILES = [*TEST_FILES, LABELED_DIR / "benzinga_llm_test.jsonl"]
REVIEWED = LABELED_DIR / "benzinga_links_reviewed.jsonl"


def default_inputs() -> list[Path]:
    """The build's default inputs: the labelled training files first (on a title that is in
    two files the first wins, and reviewed labels beat the teacher's), then the silver set."""
    return [*TRAIN_INPUTS, *([SILVER] if SILVER.exists() else [])]


def held_out_texts() -> set[str]:
    """Normalised titles of the held-out files (never part of a table)."""
    return protected_texts(HELD_OUT_FILES)
