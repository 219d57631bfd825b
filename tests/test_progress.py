"""Long commands show they are alive: ``train`` a bar per epoch (steps, time left, the epoch's
valid F1), ``predict`` and ``report`` a spinner while a model loads, ``baseline`` a table (or
``--json``), not a Python dict. The trainer's step reports are real (a small spaCy run)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from common.paths import LABELED_DIR

SPINNER = set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")  # rich's "dots" frames


def _app() -> Any:
    from tickertag.cli import _register_all, app

    if not app.registered_commands:
        _register_all()
    return app


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> Console:
    """The train commands' console, recording, as a terminal (live displays draw)."""
    c = Console(width=100, record=True, force_terminal=True, file=io.StringIO())
    monkeypatch.setattr("tickertag.cli_train.console", c)
    return c


class Recorder:
    """A progress sink that shows steps, as the CLI's bars do."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def step(self, epoch: int, epochs: int, done: int, total: int) -> None:
        self.events.append(("step", epoch, epochs, done, total))

    def __call__(self, rec: dict[str, Any]) -> None:
        self.events.append(("record", rec.get("status"), rec.get("epoch"), rec.get("valid_f1")))


def test_the_spacy_trainer_reports_every_step_of_every_epoch(tmp_path: Path):
    from training.config import TrainConfig
    from training.runner import run_training

    sink = Recorder()
    run_training(TrainConfig(kind="spacy", max_train=60, max_valid=20, epochs=2,
                             output=str(tmp_path / "m")), sink)
    for epoch in (1, 2):
        steps = [e for e in sink.events if e[0] == "step" and e[1] == epoch]
        assert steps, sink.events
        total = steps[0][4]
        assert [e[3] for e in steps] == list(range(1, total + 1))
        assert {e[2] for e in steps} == {2} and {e[4] for e in steps} == {total}
        after = sink.events.index(steps[-1]) + 1  # the epoch's record comes after its last step
        assert sink.events[after][:3] == ("record", "training", epoch)
        assert isinstance(sink.events[after][3], float)


def test_a_sink_without_step_gets_epoch_records_only(tmp_path: Path):
    """The train queue's Redis sink is a plain function: no per-step writes reach it."""
    from training.selection import EpochSelector

    got: list[dict] = []
    sel = EpochSelector(tmp_path, 2, [], 0.5, lambda texts, thr: [], lambda d: None, got.append)
    sel.step(1, 1, 10)
    sel.epoch_end(1, 10, 0.5)
    assert [r["status"] for r in got] == ["training"]


def test_train_draws_a_bar_per_epoch_with_valid_f1(tmp_path: Path, console: Console):
    r = CliRunner().invoke(_app(), ["train", "spacy", "--max-train", "60", "--epochs", "2",
                                    "--output", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    out = console.export_text()
    for epoch in (1, 2):
        assert f"epoch {epoch}/2" in out, out
    assert "steps" in out and "valid F1 0." in out, out
    manifest = json.loads((tmp_path / "m" / "tickertag.json").read_text())
    assert f"valid F1 {manifest['history'][0]['valid_f1']:.4f}" in out


def test_predict_spins_while_the_model_loads(tmp_path: Path, console: Console):
    from training.baselines import build_gazetteer

    build_gazetteer([str(LABELED_DIR / "benzinga_gold_train.jsonl")], str(tmp_path / "gz"))
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "Apple Beats Estimates"}) + "\n")
    r = CliRunner().invoke(_app(), ["predict", "--model", str(tmp_path / "gz"), "--input",
                                    str(src), "--output", str(tmp_path / "out.jsonl")])
    assert r.exit_code == 0, r.output
    out = console.export_text()
    assert f"loading {tmp_path / 'gz'}" in out and SPINNER & set(out), out


def test_report_ticks_a_step_of_unknown_length_while_a_model_loads(tmp_path: Path):
    from tickertag.progress import step_bars
    from training.baselines import build_gazetteer
    from training.report import build_report

    build_gazetteer([str(LABELED_DIR / "benzinga_gold_train.jsonl")], str(tmp_path / "gz"))
    ticks: list[tuple] = []
    build_report({"gz": str(tmp_path / "gz")}, [str(LABELED_DIR / "benzinga_gold_test.jsonl")],
                 str(tmp_path / "rep"), progress=lambda *t: ticks.append(t))
    assert ticks.index(("load gz", 0, None)) < ticks.index(("load gz", 1, 1)) \
        < ticks.index(("systems", 1, 1))
    c = Console(width=100, record=True, force_terminal=True, file=io.StringIO())
    with step_bars(c) as (_, tick):
        tick("load gz", 0, None)
    assert SPINNER & set(c.export_text())  # a spinner beside the step of unknown length


def test_baseline_prints_a_table_or_json(tmp_path: Path, console: Console):
    r = CliRunner().invoke(_app(), ["baseline", "gazetteer", "--output", str(tmp_path / "g"),
                                    "--json"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert m["kind"] == "gazetteer" and m["names"] > 100
    r = CliRunner().invoke(_app(), ["baseline", "gazetteer", "--output", str(tmp_path / "g")])
    assert r.exit_code == 0, r.output
    out = console.export_text()
    assert "{'" not in out and "┃ manifest" in out and "│ names " in out, out
