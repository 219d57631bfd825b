"""Models known by their content: the fingerprint ``training.manifest`` writes into every
manifest (and computes for a directory without one), and the long-lived ``ner`` worker that
keys its loaded models by it, so new weights in the same directory are served at once."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from gazetteer_models import gazetteer

from common.run import Run
from training.card import model_card
from training.config import TrainConfig
from training.manifest import FINGERPRINT, MANIFEST, compute_fingerprint, model_fingerprint

TEXT = "Acme Widgets and Globex Foods agree to merge"


def _manifest(d: Path) -> dict:
    return json.loads((d / MANIFEST).read_text())


def _drop_fingerprint(d: Path) -> None:
    """Make ``d`` a directory written before fingerprints existed."""
    m = _manifest(d)
    del m[FINGERPRINT]
    (d / MANIFEST).write_text(json.dumps(m, indent=2))


def test_the_fingerprint_follows_content_not_place(tmp_path: Path):
    fp = gazetteer(tmp_path / "a", ["Acme Widgets"])
    assert fp == _manifest(tmp_path / "a")[FINGERPRINT] == model_fingerprint(tmp_path / "a")
    # the same content elsewhere, and the same content without a stored fingerprint
    shutil.copytree(tmp_path / "a", tmp_path / "copy")
    assert model_fingerprint(tmp_path / "copy") == fp
    _drop_fingerprint(tmp_path / "copy")
    assert model_fingerprint(tmp_path / "copy") == fp
    # the same recipe on other data: other weights
    assert gazetteer(tmp_path / "b", ["Globex Foods"]) != fp
    # a setting of the manifest (the threshold) changes what the model does
    m = _manifest(tmp_path / "copy")
    (tmp_path / "copy" / MANIFEST).write_text(json.dumps({**m, "threshold": 0.9}))
    assert model_fingerprint(tmp_path / "copy") != fp


def test_an_older_directory_is_fingerprinted_once_per_file_state(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch):
    d = tmp_path / "old"
    fp = gazetteer(d, ["Acme Widgets"])
    _drop_fingerprint(d)
    reads: list[str] = []
    real = hashlib.file_digest

    def counted(f, digest):
        reads.append(f.name)
        return real(f, digest)

    monkeypatch.setattr(hashlib, "file_digest", counted)
    assert model_fingerprint(d) == fp
    assert model_fingerprint(d) == fp
    assert len(reads) <= 1  # the weights were read at most once (cached by path, size, mtime)
    weights = d / "gazetteer.json"
    data = json.loads(weights.read_text())
    data["names"] = {"Globex Foods": 1.0}
    weights.write_text(json.dumps(data))
    assert model_fingerprint(d) != fp  # new bytes, new fingerprint, with no manifest rewritten


def test_the_model_card_and_the_service_show_the_fingerprint(tmp_path: Path):
    from fastapi.testclient import TestClient

    from workers.ner.service import create_app

    fp = gazetteer(tmp_path / "g", ["Acme Widgets"])
    assert f"Fingerprint `{fp}`" in model_card(tmp_path / "g")
    with TestClient(create_app(str(tmp_path / "g"))) as client:
        assert client.get("/readyz").json()["fingerprint"] == fp


@pytest.mark.slow
def test_a_trained_spacy_model_is_fingerprinted_by_its_weights(tmp_path: Path):
    from training.runner import run_training

    out = tmp_path / "sp"
    m = run_training(TrainConfig(kind="spacy", max_train=60, max_valid=20, epochs=1,
                                 spacy={"start": "blank"}, output=str(out)))
    assert m[FINGERPRINT] == _manifest(out)[FINGERPRINT] == compute_fingerprint(out, m)
    shutil.copytree(out, tmp_path / "moved")
    _drop_fingerprint(tmp_path / "moved")
    assert model_fingerprint(tmp_path / "moved") == m[FINGERPRINT]
    weights = next(p for p in sorted((tmp_path / "moved").rglob("model")) if p.is_file())
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(raw))
    assert model_fingerprint(tmp_path / "moved") != m[FINGERPRINT]


@pytest.fixture
def worker(make_settings, monkeypatch: pytest.MonkeyPatch):
    """The ``ner`` worker's code in this process (its model cache lives as long as the process),
    with this test's settings."""
    from workers.ner import batch

    s = make_settings()
    monkeypatch.setattr(batch, "get_settings", lambda: s)
    return batch, s


def test_a_long_lived_worker_serves_the_weights_now_in_the_directory(tmp_path: Path, worker):
    batch, s = worker
    model = tmp_path / "model"
    first = gazetteer(model, ["Acme Widgets"])
    batch.tag_batch(s.run_id, "b1", [{"id": "h1", "text": TEXT}], str(model))
    second = gazetteer(model, ["Globex Foods"])  # retrained into the same directory
    batch.tag_batch(s.run_id, "b2", [{"id": "h2", "text": TEXT}], str(model))
    rows = {r["id"]: r for r in Run(s.run_id, s).store.iter_results()}
    assert [e["text"] for e in rows["h1"]["entities"]] == ["Acme Widgets"]
    assert [e["text"] for e in rows["h2"]["entities"]] == ["Globex Foods"]
    assert (rows["h1"]["model_fingerprint"], rows["h2"]["model_fingerprint"]) == (first, second)
    assert rows["h1"]["key"].endswith(f"@{first}:ner")  # the result key names the model too


def test_a_run_of_one_model_refuses_another_in_its_directory(tmp_path: Path, worker):
    batch, s = worker
    first = gazetteer(tmp_path / "model", ["Acme Widgets"])
    gazetteer(tmp_path / "model", ["Globex Foods"])
    with pytest.raises(batch.ModelChanged, match=first):
        batch.tag_batch(s.run_id, "b1", [{"id": "h1", "text": TEXT}], str(tmp_path / "model"),
                        fingerprint=first)
    assert list(Run(s.run_id, s).store.iter_results()) == []
