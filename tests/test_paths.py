"""Paths that cross hosts: a job sent to the train queue or a model named to the ner workers is
resolved on the receiving host, whose home (shared volume) and install differ from the client's."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.paths import LABELED_DIR, from_shared, to_shared
from training.config import TrainConfig


def test_a_path_under_the_client_home_lands_under_the_worker_home(tmp_path, monkeypatch):
    client, worker = tmp_path / "client", tmp_path / "worker"
    monkeypatch.setenv("TICKERTAG_HOME", str(client))
    sent = to_shared(client / "models" / "m1")
    assert sent == "models/m1"
    monkeypatch.setenv("TICKERTAG_HOME", str(worker))
    assert from_shared(sent) == str(worker / "models" / "m1")


def test_bundled_data_travels_as_a_token_and_outside_paths_stay_absolute(tmp_path, monkeypatch):
    monkeypatch.setenv("TICKERTAG_HOME", str(tmp_path / "home"))
    sent = to_shared(LABELED_DIR / "benzinga_gold_train.jsonl")
    assert sent == "@data/labeled/benzinga_gold_train.jsonl"
    assert Path(from_shared(sent)).exists()
    outside = tmp_path / "elsewhere" / "x.jsonl"
    assert to_shared(outside) == str(outside) and from_shared(str(outside)) == str(outside)


def test_a_submitted_train_config_is_resolved_on_the_worker(tmp_path, monkeypatch):
    client, worker = tmp_path / "client", tmp_path / "worker"
    (client / "data").mkdir(parents=True)
    mine = client / "data" / "mine.jsonl"
    mine.write_text("")
    monkeypatch.setenv("TICKERTAG_HOME", str(client))
    cfg = TrainConfig(kind="spacy", train=[str(mine), str(LABELED_DIR / "benzinga_gold_train.jsonl")],
                      output=str(client / "models" / "m"))
    job = cfg.to_job()
    assert job["train"] == ["data/mine.jsonl", "@data/labeled/benzinga_gold_train.jsonl"]
    assert job["output"] == "models/m" and job["valid"].startswith("@data/")
    assert str(client) not in repr(job)
    monkeypatch.setenv("TICKERTAG_HOME", str(worker))
    got = TrainConfig.from_job(job)
    assert got.train == [str(worker / "data" / "mine.jsonl"), str(LABELED_DIR / "benzinga_gold_train.jsonl")]
    assert got.output == str(worker / "models" / "m") and got.base == cfg.base


@pytest.mark.parametrize("base", ["local:minilm", "urchade/gliner_small-v2.1"])
def test_a_hub_id_base_travels_unchanged(base, tmp_path, monkeypatch):
    monkeypatch.setenv("TICKERTAG_HOME", str(tmp_path))
    job = TrainConfig(kind="gliner", base=base, output=str(tmp_path / "m")).to_job()
    assert job["base"] == base and TrainConfig.from_job(job).base == base
