"""The CLI options docker-compose.yml's services rely on: `train --if-missing` (the one-shot
trainer that every `up` starts trains once) and `llm serve --host` (llama.cpp reachable from the
workers' containers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result


def invoke(*args: str) -> Result:
    from tickertag.cli import _register_all, app

    if not app.registered_commands:
        _register_all()
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def trainings(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each training the CLI starts, recorded instead of run."""
    import training.runner

    calls: list[Any] = []

    def fake(cfg: Any, on_progress: Any = None) -> dict[str, Any]:
        calls.append(cfg)
        return {"train_seconds": 0, "device": "cpu"}

    monkeypatch.setattr(training.runner, "run_training", fake)
    return calls


def test_if_missing_leaves_a_model_in_place(tmp_path: Path, trainings: list[Any]) -> None:
    out = tmp_path / "spacy"
    out.mkdir()
    (out / "tickertag.json").write_text(json.dumps({"kind": "spacy", "fingerprint": "abc"}))
    r = invoke("train", "spacy", "--output", str(out), "--if-missing", "--json")
    assert r.exit_code == 0, r.output
    assert trainings == []
    assert json.loads(r.stdout.strip().splitlines()[-1])["fingerprint"] == "abc"


def test_if_missing_trains_an_empty_directory(tmp_path: Path, trainings: list[Any]) -> None:
    out = tmp_path / "spacy"
    out.mkdir()  # a directory without a manifest (a failed earlier run) is no model
    r = invoke("train", "spacy", "--output", str(out), "--if-missing", "--epochs", "1")
    assert r.exit_code == 0, r.output
    assert [Path(c.output) for c in trainings] == [out]


def test_without_if_missing_a_model_is_trained_again(tmp_path: Path,
                                                    trainings: list[Any]) -> None:
    out = tmp_path / "spacy"
    out.mkdir()
    (out / "tickertag.json").write_text("{}")
    assert invoke("train", "spacy", "--output", str(out)).exit_code == 0
    assert len(trainings) == 1


@pytest.mark.parametrize(("args", "host"), [((), "127.0.0.1"), (("--host", "0.0.0.0"), "0.0.0.0")])
def test_llm_serve_listens_where_asked(monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...],
                                       host: str) -> None:
    import os

    seen: list[list[str]] = []
    monkeypatch.setattr(os, "execv", lambda path, argv: seen.append(list(argv)))
    r = invoke("llm", "serve", "--gguf", "/models/x.gguf", *args)
    assert r.exit_code == 0, r.output
    argv = seen[0]
    assert argv[argv.index("--host") + 1] == host and argv[argv.index("--model") + 1] == "/models/x.gguf"
