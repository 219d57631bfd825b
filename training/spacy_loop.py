"""A blank spaCy recipe trained by spaCy's own loop, in this process: what ``tickertag
export-spacy``, ``python -m spacy train`` and ``tickertag import-spacy`` do in three commands,
as one ``train`` (``loop = "spacy"`` in a recipe's ``[spacy]`` table).

Why: spaCy users expect the recipe to train the way ``spacy train`` trains it (its batch
schedule across epochs, its evaluation every ``eval_frequency`` steps, ``model-best`` chosen by
its own ``ents_f`` on the dev corpus), and the model that comes out to be a model directory like
any other: the manifest, card and ``valid_f1`` by the project's scorer come from
``import_pipeline``, and the progress sink gets one record per evaluation, so the CLI's bars and
the train queue's status work for both loops.
"""

from __future__ import annotations

import io
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.config import TrainConfig
from training.selection import Progress
from training.spacy_project import (
    CONFIG_NAME,
    DEV_CORPUS,
    TRAIN_CORPUS,
    export_project,
    import_pipeline,
)

LOGGER = "tickertag.ProgressLogger.v1"
WORK_DIR = "spacy-loop"  # inside the model directory while it trains; removed at the end


@dataclass
class _Run:
    """The training run the registered logger reports to (spaCy builds the logger from the
    config's name, so it cannot be handed a callable). spaCy evaluates after step 0 and then
    every ``every`` steps; interval ``k`` is the ``every`` steps that end in evaluation ``k``
    (about an epoch each: ``spacy_project`` sets ``eval_frequency`` so), shown as bar ``k``."""

    on_progress: Progress | None
    every: int
    evals: int
    t0: float = field(default_factory=time.time)
    history: list[dict[str, Any]] = field(default_factory=list)
    step: int = -1

    def log_step(self, info: dict[str, Any] | None) -> None:
        """Step ``self.step`` ended (``info`` is spaCy's record when it was evaluated)."""
        self.step += 1
        k = -(-self.step // self.every)  # 0 for step 0, then 1.. per interval
        show = getattr(self.on_progress, "step", None)
        if show is not None and k:
            show(k, self.evals, self.step - (k - 1) * self.every, self.every)
        if info is None:
            return
        best = max((h["dev_ents_f"] for h in self.history), default=-1.0)
        rec = {"epoch": k, "step": info["step"], "spacy_epoch": info["epoch"],
               "elapsed_s": round(time.time() - self.t0, 1),
               "loss": round(float(info["losses"].get("ner", 0.0)), 4),
               "dev_ents_f": round(float(info["score"]), 4),
               "saved": float(info["score"]) >= best}  # spaCy's model-best: ties go to the later
        self.history.append(rec)
        print(f"[tickertag] evaluation {k}/{self.evals} " + " ".join(
            f"{key}={v}" for key, v in rec.items() if key != "epoch"), flush=True)
        if self.on_progress:
            self.on_progress({"status": "training", "epochs": self.evals, **rec})


_RUN: _Run | None = None


def _progress_logger() -> Any:
    """spaCy's logger protocol, ``setup(nlp, stdout, stderr) -> (log_step, finalize)``, feeding
    the current ``_Run``."""

    def setup(nlp: Any, stdout: Any, stderr: Any) -> tuple[Any, Any]:
        run = _RUN
        if run is None:
            raise RuntimeError(f"{LOGGER} reports to tickertag's train_with_spacy_loop; "
                               "use spaCy's own logger with `python -m spacy train`")
        return run.log_step, lambda: None

    return setup


def _register_logger() -> None:
    from spacy.util import registry

    if LOGGER not in registry.loggers.get_all():
        registry.loggers.register(LOGGER, func=_progress_logger)


def train_with_spacy_loop(cfg: TrainConfig, on_progress: Progress | None = None
                          ) -> dict[str, Any]:
    """Export the recipe to ``OUTPUT/spacy-loop``, train it with spaCy's loop, and make the
    pipeline spaCy chose (``model-best``) the model directory ``OUTPUT``."""
    from spacy.training.initialize import init_nlp
    from spacy.training.loop import train as train_nlp
    from spacy.util import load_config

    out = Path(cfg.output or "models/spacy")
    work = out / WORK_DIR
    t0 = time.time()
    info = export_project(cfg, work)
    _register_logger()
    overrides = {"paths.train": str(work / TRAIN_CORPUS), "paths.dev": str(work / DEV_CORPUS),
                 "training.logger": {"@loggers": LOGGER}}
    config = load_config(work / CONFIG_NAME, overrides=overrides, interpolate=False)
    global _RUN
    every = int(info["eval_frequency"])  # the run ends on evaluation max_steps / every
    _RUN = run = _Run(on_progress, every, int(info["max_steps"]) // every, t0)
    try:
        nlp = init_nlp(config)
        (work / "output").mkdir(exist_ok=True)
        train_nlp(nlp, work / "output", stdout=io.StringIO(), stderr=io.StringIO())
    finally:
        _RUN = None
    best = next((h for h in reversed(run.history) if h["saved"]), None)  # spaCy's model-best
    extra = {"loop": "spacy", "history": run.history, "train_headlines": info["train_headlines"],
             "spans_dropped": info["spans_dropped"], "eval_frequency": info["eval_frequency"],
             "best_epoch": best["epoch"] if best else None,
             "best_step": best["step"] if best else None, "device": "cpu",
             "train_seconds": round(time.time() - t0, 1)}
    manifest = import_pipeline(_model_best(work), out, cfg, extra)
    shutil.rmtree(work, ignore_errors=True)
    if on_progress:
        on_progress({"status": "done", "valid_f1": manifest.get("valid_f1"), "threshold": 0.0,
                     "output": str(out)})
    return manifest


def _model_best(work: Path) -> Path:
    """The pipeline spaCy chose in a finished run under ``work``."""
    best = work / "output" / "model-best"
    if not best.is_dir():
        raise RuntimeError(f"spaCy's loop ended without a model-best in {best.parent}: was the "
                           "dev corpus empty?")
    return best
