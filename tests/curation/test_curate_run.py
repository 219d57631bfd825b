"""The curate stage end to end: the plain function on a store filled in a tmp dir, the
``tickertag curate`` command, and the Celery task through a real worker on the real Redis."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from curation_data import as_results, fill_store, labeled_rows
from datasets import load_from_disk
from typer.testing import CliRunner

from common.settings import Settings
from workers.curate.pipeline import curate_run
from workers.curate.sampling import split_of


def _rows() -> list[dict]:
    rows = as_results(labeled_rows("llm"))
    first = rows[1]
    rows += [
        # a redelivered headline: the later answer wins
        {**first, "entities": first["entities"][:1], "companies": first["companies"][:1],
         "normalized": first["normalized"][:1]},
        {**rows[2], "id": "x-invalid", "valid": False},
        {**rows[3], "id": "x-old", "date": "2008-05-01"},
        {**rows[4], "id": "x-bad-span",
         "entities": [{"start": 0, "end": 3, "label": "Company", "text": "nope"}],
         "companies": ["nope"], "normalized": ["Nope Inc"]},
    ]
    return rows


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(results_dir=str(tmp_path / "runs"), run_id="cur")


def _read(out: Path, split: str) -> list[dict]:
    return [json.loads(x) for x in (out / f"{split}.jsonl").read_text().splitlines()]


def test_curate_run_on_a_filled_store(settings: Settings):
    rows = _rows()
    fill_store(Path(settings.results_dir), "cur", rows)
    rep = curate_run("cur", {"company_fraction": 0.05, "empty_fraction": 0.05}, settings)
    out = Path(rep["output"])
    assert rep["results"] == len(rows)
    assert rep["valid"] == len({r["id"] for r in rows}) - 1 and rep["outside_splits"] == 1
    got = {s: _read(out, s) for s in ("train", "valid", "test")}
    assert {k: len(v) for k, v in got.items()} == rep["splits"]
    assert sum(rep["splits"].values()) + len(rep["invalid_spans"]) == rep["sampled"]
    assert set(rep["invalid_spans"]) <= {"x-bad-span"}
    for split, sample in got.items():
        for r in sample:
            assert split_of(r["date"]) == split
            assert r["id"] != "x-invalid" and r["id"] != "x-old"
            for e in r["entities"]:
                assert r["text"][e["start"]:e["end"]] == e["text"]
                assert e["cluster"] in r["clusters"] and e["representative"]
            if r["id"] == rows[1]["id"]:
                assert len(r["entities"]) == 1
    # every company cluster with a headline in a split is in the sample
    clusters = [json.loads(x) for x in (out / "clusters.jsonl").read_text().splitlines()]
    sampled = {c for v in got.values() for r in v for c in r["clusters"]}
    assert len(sampled) == rep["clusters_in_splits"] - ("x-bad-span" in rep["invalid_spans"])
    assert len(clusters) == rep["clusters"] and rep["clusters"] < rep["mentions"]
    # about 5 % of the no-company headlines
    n_empty = sum(1 for v in got.values() for r in v if not r["entities"])
    in_split_empty = sum(1 for r in as_results(labeled_rows("llm"))
                         if not r["entities"] and split_of(r["date"]))
    assert abs(n_empty - 0.05 * in_split_empty) <= 2
    dd = load_from_disk(str(out / "hf"))
    assert {k: len(dd[k]) for k in dd} == rep["splits"]
    report = (out / "cluster_report.md").read_text()
    assert "Largest clusters" in report and "Examples of merged names" in report
    assert json.loads((out / "report.json").read_text())["sampled"] == rep["sampled"]
    # the same run and options give the same files
    before = {s: (out / f"{s}.jsonl").read_text() for s in got}
    curate_run("cur", {"company_fraction": 0.05, "empty_fraction": 0.05}, settings)
    assert before == {s: (out / f"{s}.jsonl").read_text() for s in got}


def test_cli(results_dir: Path):
    from tickertag.cli import _register_all, app

    fill_store(results_dir, "cli", as_results(labeled_rows("gold")))
    _register_all()
    res = CliRunner().invoke(app, ["curate", "cli", "--fraction", "0.1",
                                   "--split", "train=2010-2015", "--split", "test=2016-2020"])
    assert res.exit_code == 0, res.output
    assert "largest clusters" in res.output and "examples of merged names" in res.output
    out = results_dir / "cli" / "curated"
    assert not (out / "valid.jsonl").exists() and (out / "test.jsonl").exists()
    assert "warning" not in res.output  # a run the ledger does not know: nothing to say
    bad = CliRunner().invoke(app, ["curate", "cli", "--split", "train=2010-2015",
                                   "--split", "test=2015-2020"])
    assert bad.exit_code != 0


def test_cli_says_when_the_run_is_not_complete(results_dir: Path, run_id: str):
    """By hand, curation reads what the store holds now; the queue's waits for the run's end.
    A user curating a run with batches in flight is told so on stderr, and curation goes on."""
    from common.ledger import RunLedger
    from tickertag.cli import _register_all, app

    fill_store(results_dir, run_id, as_results(labeled_rows("gold")))
    ledger = RunLedger.from_url(os.environ["TICKERTAG_REDIS_URL"], run_id)
    ledger.batch_enqueued(8)
    ledger.batch_enqueued(8)
    ledger.finish_batch("b1", {"headlines_done": 8})
    _register_all()
    args = ["curate", run_id, "--fraction", "0.1", "--split", "train=2010-2015",
            "--split", "test=2016-2020", "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (f"curate: warning: run {run_id} is not complete (1 batch(es) in flight, 8 of 16 "
            "headlines done)") in res.stderr
    ledger.finish_batch("b2", {"headlines_done": 8})
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0 and "warning" not in res.stderr


def test_task_through_a_worker(make_settings, workers, celery_app):
    s = make_settings()
    rows = as_results(labeled_rows("llm"))
    fill_store(Path(s.results_dir), s.run_id, rows)
    workers(s, queue="curate", concurrency=1)
    res = celery_app.send_task("tickertag.curate.run",
                               args=[s.run_id, {"company_fraction": 0.2, "empty_fraction": 0.2}],
                               queue="curate", routing_key="curate")
    rep = res.get(timeout=120)
    assert rep["results"] == len(rows) and rep["clusters"] > 100
    assert rep["options"]["company_fraction"] == 0.2
    out = Path(rep["output"])
    dd = load_from_disk(str(out / "hf"))
    assert sum(len(dd[k]) for k in dd) == sum(rep["splits"].values()) == rep["sampled"]
    assert all(r["date"][:4] in {"2019", "2020"} for r in dd["test"])
    g = [json.loads(x) for x in (out / "gliner" / "train.jsonl").read_text().splitlines()]
    assert len(g) == rep["splits"]["train"] and all("tokenized_text" in x for x in g)


def test_link_step_builds_the_runs_alias_table_without_test_titles(settings: Settings):
    from linking.files import held_out_texts
    from linking.table import AliasTable
    from training.data import norm_text
    from workers.curate.pipeline import link_run

    rows = _rows()
    fill_store(Path(settings.results_dir), "cur", rows)
    rep = link_run("cur", settings)
    table = AliasTable.load(rep["output"])
    assert Path(rep["output"]) == Path(settings.results_dir) / "cur" / "aliases.json"
    held = held_out_texts()
    in_run = {norm_text(r["text"]) for r in rows}
    usable = {norm_text(r["text"]) for r in rows if r["entities"]} - held
    assert in_run & held  # the LLM files include test headlines: the step must drop them
    assert rep["run_rows"] == len(usable) and rep["linked"] > 0
    assert table.entries and rep["names"] == len(table.entries)


def test_a_2024_25_run_curates_into_three_nonempty_splits(settings: Settings):
    """A stream outside FNSPID's years: the default year ranges would sample nothing; the
    run's own dates give the ranges (or TICKERTAG_CURATE_SPLITS when set)."""
    import datetime as dt

    rows = as_results(labeled_rows("llm"))
    for i, r in enumerate(rows):
        r["date"] = (dt.date(2024, 3, 1) + dt.timedelta(days=i * 400 // len(rows))).isoformat()
    fill_store(Path(settings.results_dir), "cur", rows)
    rep = curate_run("cur", {}, settings)
    assert rep["splits_source"].startswith("derived") and rep["outside_splits"] == 0
    assert all(rep["splits"].values()), rep["splits"]
    got = {s: _read(Path(rep["output"]), s) for s in ("train", "valid", "test")}
    assert max(r["date"] for r in got["train"]) < min(r["date"] for r in got["valid"])
    assert max(r["date"] for r in got["valid"]) < min(r["date"] for r in got["test"])

    mine = settings.model_copy(update={"curate_splits": {"train": (2024, 2024),
                                                         "test": ("2025-01", "2025-12")}})
    rep = curate_run("cur", {}, mine)
    assert rep["splits_source"].startswith("settings") and set(rep["splits"]) == {"train", "test"}
    assert all(r["date"] >= "2025-01-01" for r in _read(Path(rep["output"]), "test"))
