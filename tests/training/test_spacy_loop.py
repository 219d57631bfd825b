"""spaCy's own loop run by ``tickertag train spacy --loop spacy``: it trains the model that
``python -m spacy train`` trains on the exported recipe, and leaves a model directory with the
project's valid F1, the run's evaluations and progress for the bars."""

from __future__ import annotations

import subprocess
import sys

import spacy

from common.metrics import score
from training.config import TrainConfig
from training.data import recipe_valid_rows, spans_of
from training.spacy_loop import WORK_DIR
from training.spacy_parts import PIPELINE_DIR, predict_spans
from training.spacy_project import export_project
from training.spacy_trainer import train_spacy

TINY = {"start": "blank", "width": 16, "depth": 1, "embed_rows": [200, 50, 50, 50],
        "averages": True, "loop": "spacy"}


class Sink:
    """A progress sink like the CLI's bars: epoch records and, through ``step``, each step."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self.steps: list[tuple[int, int, int, int]] = []

    def __call__(self, rec: dict) -> None:
        self.records.append(rec)

    def step(self, epoch: int, epochs: int, done: int, total: int) -> None:
        self.steps.append((epoch, epochs, done, total))


def _predict(pipeline, texts: list[str]) -> list:
    return predict_spans(spacy.load(pipeline), texts)


def test_the_loop_run_here_is_spacy_train_on_the_exported_recipe(tmp_path):
    cfg = TrainConfig(kind="spacy", max_train=80, max_valid=120, epochs=1, seed=3, spacy=TINY,
                      output=str(tmp_path / "model"))
    export_project(cfg, tmp_path / "project")
    subprocess.run([sys.executable, "-m", "spacy", "train", "config.cfg", "--output", "out"],
                   cwd=tmp_path / "project", check=True, capture_output=True)
    sink = Sink()
    m = train_spacy(cfg, sink)

    valid = recipe_valid_rows(cfg)
    assert len(valid) == 120  # the recipe's max_valid subset, as the custom loop selects on
    texts = [r["text"] for r in valid]
    here = _predict(tmp_path / "model" / PIPELINE_DIR, texts)
    assert here == _predict(tmp_path / "project" / "out" / "model-best", texts)
    assert m["loop"] == "spacy" and m["trained_by"] == "python -m spacy train"
    assert m["valid_f1"] == score([spans_of(r) for r in valid], here).f1
    assert not (tmp_path / "model" / WORK_DIR).exists()  # the export is gone, the model stays

    evals = [r for r in sink.records if r.get("status") == "training"]
    assert [r["epoch"] for r in evals] == list(range(len(evals)))  # step 0, then each interval
    assert evals == [{"status": "training", "epochs": evals[0]["epochs"], **h}
                     for h in m["history"]]
    best = max(m["history"], key=lambda h: (h["dev_ents_f"], h["step"]))
    assert (m["best_epoch"], m["best_step"]) == (best["epoch"], best["step"])
    every = m["eval_frequency"]
    # one evaluation after step 0 per epoch, the last on the final step: spaCy never scores the
    # steps after its last evaluation, so a one-epoch run once kept the untrained step-0 model
    assert [h["step"] for h in m["history"]] == [k * every for k in range(cfg.epochs + 1)]
    assert sink.steps[0] == (1, evals[0]["epochs"], 1, every)
    assert all(0 < e <= n and 0 < done <= total == every for e, n, done, total in sink.steps)
    assert sink.records[-1]["status"] == "done"
    assert sink.records[-1]["valid_f1"] == m["valid_f1"]


def test_the_loop_option_is_refused_where_it_cannot_run(tmp_path):
    import pytest

    cfg = TrainConfig(kind="spacy", spacy=TINY, resume=True, output=str(tmp_path / "m"))
    with pytest.raises(ValueError, match="does not resume"):
        train_spacy(cfg)

    res = subprocess.run([sys.executable, "-m", "tickertag", "train", "gliner", "--loop", "spacy",
                          "--output", str(tmp_path / "g")], capture_output=True, text=True)
    assert res.returncode == 1
    assert "(--loop) is for spaCy recipes; this one is gliner" in res.stderr
