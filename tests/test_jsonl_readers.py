"""Every JSONL the project reads goes through ``common.jsonl``: the result store's shards, the
input of ``tickertag predict`` and an export described by a dataset card report a broken line
by file and line number (their own loops raised a bare JSONDecodeError: "Expecting value:
line 1 column 1", no file), and blank lines are skipped everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _broken(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"id": "a", "key": "a:m:p", "text": "Apple Beats"}) + "\n\n"
                    + "{not json\n", encoding="utf-8")
    return path


def test_the_result_store_names_a_broken_shard_line(tmp_path: Path):
    from common.store import ResultStore

    store = ResultStore(str(tmp_path), "r")
    store.write_results("b1", [{"id": "a", "key": "a:m:p", "text": "Ünïcode Beats"}])
    assert [r["text"] for r in store.iter_results()] == ["Ünïcode Beats"]
    shard = _broken(tmp_path / "r" / "results" / "b2.jsonl")
    with pytest.raises(ValueError, match=rf"{shard}:3: not JSON"):
        list(store.iter_results())


def test_predict_names_a_broken_input_line(tmp_path: Path):
    from workers.ner.predict_file import predict_file

    class Nothing:
        def predict(self, texts, threshold, batch_size):
            return [[] for _ in texts]

    src = _broken(tmp_path / "in.jsonl")
    with pytest.raises(ValueError, match=rf"{src}:3: not JSON"):
        predict_file(Nothing(), src, tmp_path / "out.jsonl")


def test_a_dataset_card_names_a_broken_export_line(tmp_path: Path):
    from common.cards import describe_file

    src = _broken(tmp_path / "export.jsonl")
    with pytest.raises(ValueError, match=rf"{src}:3: not JSON"):
        describe_file(src)
