"""A results root that is not a local directory (``memory://``, fsspec's own in-process object
store, standing in for ``s3://``): a run's results, its curated splits and its reviewed pulls
all live there, and nothing lands on the local disk. Real Redis (the test db) for the ledger.

The files are read back with fsspec directly, not through the store, so a stage written
anywhere else (a local ``memory:/...`` folder, as once happened) is missed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from curation_data import as_results, labeled_rows

from common.run import Run
from common.settings import Settings, get_settings
from common.store import batch_id
from workers.curate.pipeline import ERROR_FILE, EmptyCuration, curate_run, link_run
from workers.review.argilla import run_folder, write_reviewed

SPLITS = ("train", "valid", "test")


@pytest.fixture
def remote(make_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings on a fresh ``memory://`` root, also in the environment (the review functions
    read it there); the working directory is ``tmp_path``, so a stray local write is seen."""
    root = f"memory://tt-{uuid.uuid4().hex}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TICKERTAG_RESULTS_DIR", root)
    get_settings.cache_clear()
    s = make_settings(results_dir=root)
    yield s
    get_settings.cache_clear()
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def _read(url: str) -> list[dict]:
    with fsspec.open(url, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_results_curated_and_reviewed_output_live_on_the_remote_root(remote: Settings,
                                                                   tmp_path: Path):
    s = remote
    run = Run(s.run_id, s)
    rows = as_results(labeled_rows("llm"))
    for i in range(0, len(rows), 200):
        chunk = rows[i:i + 200]
        assert run.record_batch(batch_id(r["id"] for r in chunk), chunk,
                                {"headlines_done": len(chunk)})

    rep = curate_run(s.run_id, {"company_fraction": 0.05, "empty_fraction": 0.05}, s)
    base = f"{s.results_dir}/{s.run_id}"
    assert rep["output"] == f"{base}/curated"
    got = {sp: _read(f"{base}/curated/{sp}.jsonl") for sp in SPLITS}
    assert {k: len(v) for k, v in got.items()} == rep["splits"] and sum(rep["splits"].values())
    fs = fsspec.filesystem("memory")
    for name in ("report.json", "cluster_report.md", "clusters.jsonl", "hf/dataset_dict.json",
                 "gliner/train.jsonl", "spanmarker/test.jsonl"):
        assert fs.exists(f"{base}/curated/{name}"), name
    assert not fs.exists(f"{base}/curated/{ERROR_FILE}")
    # what review push reads: the curated split, through the run's store
    assert run_folder(s.run_id, "curated").read_jsonl("train.jsonl") == got["train"]

    reviewed = [{**r, "entities": r["entities"][:1], "reviewers": 1} for r in got["train"]]
    written = write_reviewed(run_folder(s.run_id, "reviewed"), "train", reviewed)
    assert written == f"{base}/reviewed/train.jsonl"
    assert _read(written) == reviewed
    # the link step after curation: the run's alias table next to its results
    linked = link_run(s.run_id, s)
    assert linked["output"] == f"{base}/aliases.json" and linked["run_rows"] > 0
    table = json.loads(fs.cat_file(f"{base}/aliases.json"))
    assert table and linked["names"] > 0
    assert list(tmp_path.iterdir()) == []  # nothing of the run on the local disk


def test_an_empty_curation_records_its_cause_on_the_remote_root(remote: Settings,
                                                               tmp_path: Path):
    s = remote
    with pytest.raises(EmptyCuration):
        curate_run(s.run_id, None, s)
    cause = json.loads(fsspec.filesystem("memory").cat_file(
        f"{s.results_dir}/{s.run_id}/curated/{ERROR_FILE}"))
    assert cause["run_id"] == s.run_id and cause["cause"]
    assert list(tmp_path.iterdir()) == []
