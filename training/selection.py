"""What both trainers share: per-epoch valid F1, best-epoch saving, resume state, threshold
tuning and the manifest.

Valid F1 is always ``common.metrics.score`` on character spans predicted by the same function
``load_tagger(...).predict`` uses, so the number that picks the checkpoint is the number the
evaluation and the report show. The running state (history, best F1) is written to
``train_state.json`` after every epoch, so a resumed run continues the same selection instead of
forgetting that an earlier epoch was better.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.metrics import score
from common.spans import Span
from training.card import refresh_model_card
from training.data import spans_of
from training.manifest import write_manifest

log = logging.getLogger(__name__)

STATE = "train_state.json"
# Epoch records (status, epoch, valid F1...) for logs, Redis and people. A sink may also have a
# ``step(epoch, epochs, done, total)`` method: then it is told each optimiser step as well (a
# live bar per epoch); sinks without it (the train queue's Redis hash) get epochs only.
Progress = Callable[[dict[str, Any]], None]
PredictFn = Callable[[list[str], float], list[list[Span]]]

THRESHOLDS = [x / 20 for x in range(2, 19)]  # 0.10 .. 0.90


def valid_f1(predict: PredictFn, rows: list[dict], threshold: float) -> float:
    """Exact-span micro F1 of ``predict`` on labelled rows, by the project's scorer."""
    pred = predict([r["text"] for r in rows], threshold)
    return score([spans_of(r) for r in rows], pred).f1


def tune_threshold(predict: PredictFn, rows: list[dict]) -> tuple[float, float]:
    """The decision threshold with the best valid F1: predict once at a low cut, then score each
    candidate by filtering, so tuning costs one pass over valid. Ties go to the lower threshold
    (better recall on unseen names)."""
    low = predict([r["text"] for r in rows], min(THRESHOLDS) / 2)
    gold = [spans_of(r) for r in rows]
    best = (0.5, -1.0)
    for thr in THRESHOLDS:
        f = score(gold, [[s for s in p if (s.score or 0.0) >= thr] for p in low]).f1
        if f > best[1] + 1e-9:
            best = (thr, f)
    return best


class EpochSelector:
    """Called at the end of every epoch: score valid, save the model when it is the best so far,
    record and report progress. ``save`` writes the model to the output directory."""

    def __init__(self, out: Path, epochs: int, valid_rows: list[dict], threshold: float,
                 predict: PredictFn, save: Callable[[Path], None],
                 on_progress: Progress | None = None, resume: bool = False) -> None:
        self.out, self.epochs, self.valid_rows = out, epochs, valid_rows
        self.threshold, self.predict, self.save = threshold, predict, save
        self.on_progress = on_progress
        self.t0 = time.time()
        self.state: dict[str, Any] = {"best_f1": -1.0, "best_epoch": None, "history": []}
        if resume and (out / STATE).exists():
            self.state = json.loads((out / STATE).read_text())

    def step(self, epoch: int, done: int, total: int) -> None:
        """Step ``done`` of ``total`` in ``epoch`` ended: passed on to a sink that shows steps."""
        show = getattr(self.on_progress, "step", None)
        if show is not None:
            show(epoch, self.epochs, done, total)

    def epoch_end(self, epoch: int, step: int, loss: float | None) -> None:
        rec: dict[str, Any] = {"epoch": epoch, "step": step,
                               "elapsed_s": round(time.time() - self.t0, 1)}
        if loss is not None:
            rec["loss"] = round(loss, 4)
        if self.valid_rows:
            rec["valid_f1"] = round(valid_f1(self.predict, self.valid_rows, self.threshold), 4)
            if rec["valid_f1"] > self.state["best_f1"]:
                self.state.update(best_f1=rec["valid_f1"], best_epoch=epoch)
                self.save(self.out)
                rec["saved"] = True
        else:  # nothing to select with: the last epoch is the model
            self.save(self.out)
            self.state["best_epoch"] = epoch
        # A resumed run repeats the epochs after its last checkpoint: keep one record per epoch.
        self.state["history"] = [h for h in self.state["history"] if h["epoch"] < epoch] + [rec]
        (self.out / STATE).write_text(json.dumps(self.state, indent=2))
        print(f"[tickertag] epoch {epoch}/{self.epochs} " + " ".join(
            f"{k}={v}" for k, v in rec.items() if k != "epoch"), flush=True)
        if self.on_progress:
            self.on_progress({"status": "training", "epochs": self.epochs, **rec})

    def callback(self) -> Any:
        """A transformers ``TrainerCallback`` driving ``epoch_end`` (both libraries' trainers are
        ``transformers.Trainer`` subclasses)."""
        from transformers import TrainerCallback

        selector = self

        class _EpochEnd(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                if not state.max_steps:
                    return
                per_epoch = max(1, -(-state.max_steps // max(1, round(args.num_train_epochs))))
                epoch = min((state.global_step - 1) // per_epoch + 1, selector.epochs)
                selector.step(epoch, state.global_step - (epoch - 1) * per_epoch, per_epoch)

            def on_epoch_end(self, args, state, control, **kw):
                losses = [h["loss"] for h in state.log_history if "loss" in h]
                selector.epoch_end(round(state.epoch or 0), state.global_step,
                                   losses[-1] if losses else None)

        return _EpochEnd()


def last_checkpoint(out: Path) -> str | None:
    """The newest *complete* trainer checkpoint under ``out/checkpoints`` (for ``resume``).

    A host killed while it saved leaves a checkpoint directory without ``trainer_state.json``
    (the Trainer writes it after the weights and optimizer); resuming from that one failed with
    "Can't find a valid checkpoint" (benchmarks/faults.py, train-kill), so it is passed over."""
    ckpts = sorted((p for p in (out / "checkpoints").glob("checkpoint-*")
                    if (p / "trainer_state.json").is_file()),
                   key=lambda p: int(p.name.rsplit("-", 1)[-1]))
    return str(ckpts[-1]) if ckpts else None


def finish(out: Path, kind: str, selector: EpochSelector, best_predict: PredictFn | None,
           cfg: dict[str, Any], train_rows: int, device: str, extra: dict[str, Any] | None = None
           ) -> dict[str, Any]:
    """Tune the threshold on the best model, write the manifest, drop the checkpoints (they are
    for resuming an interrupted run; the finished directory is the model)."""
    thr, thr_f1 = cfg["threshold"], None
    if best_predict is not None and selector.valid_rows:
        thr, thr_f1 = tune_threshold(best_predict, selector.valid_rows)
    from training.registry import family

    manifest = {
        "kind": kind, "family": family(kind).name, "threshold": thr, "valid_f1": thr_f1,
        "best_epoch": selector.state["best_epoch"],
        "best_epoch_valid_f1": selector.state["best_f1"] if selector.valid_rows else None,
        "history": selector.state["history"], "train_headlines": train_rows,
        "train_seconds": round(time.time() - selector.t0, 1), "device": device,
        "config": cfg, **(extra or {}),
    }
    manifest = write_manifest(out, manifest)
    refresh_model_card(out)  # README.md with the Hub's metadata, from the manifest just written
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    (out / STATE).unlink(missing_ok=True)
    if selector.on_progress:
        selector.on_progress({"status": "done", "valid_f1": thr_f1, "threshold": thr,
                              "output": str(out)})
    log.info("trained %s -> %s: valid F1 %s at threshold %s", kind, out, thr_f1, thr)
    return manifest


def prepare_run(cfg, default_output: str) -> tuple[Path, list[dict], list[dict]]:
    """Seed, CPU threads, output directory and the train/valid rows: the start both trainers
    share (training rows exclude valid headlines; subsets are seeded)."""
    import torch

    from training.data import recipe_rows

    torch.manual_seed(cfg.seed)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    out = Path(cfg.output or default_output)
    out.mkdir(parents=True, exist_ok=True)
    train_rows, valid_rows = recipe_rows(cfg)
    return out, train_rows, valid_rows
