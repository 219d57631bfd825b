"""A run that would curate into empty splits fails with its cause instead of writing empty
train/valid/test files: the plain function, ``tickertag curate`` and the queue task."""

from __future__ import annotations

import base64
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from curation_data import as_results, fill_store, labeled_rows
from typer.testing import CliRunner

from common.settings import Settings
from workers.curate.pipeline import ERROR_FILE, EmptyCuration, curate_run

N = 40


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(results_dir=str(tmp_path / "runs"), run_id="dead")


def _rows(**over: Any) -> list[dict[str, Any]]:
    """40 real annotated headlines (every one names a company), each with ``over`` applied."""
    rows = [r for r in as_results(labeled_rows("gold")) if r["entities"]][:N]
    assert len(rows) == N
    return [{**r, **over} for r in rows]


def _fail(settings: Settings, rows: list[dict[str, Any]], options: dict | None = None
          ) -> EmptyCuration:
    fill_store(Path(settings.results_dir), "dead", rows)
    with pytest.raises(EmptyCuration) as e:
        curate_run("dead", options or {}, settings)
    return e.value


def _curated(settings: Settings) -> Path:
    return Path(settings.results_dir) / "dead" / "curated"


def test_a_run_without_dates_names_the_cause_and_writes_no_split(settings: Settings):
    e = _fail(settings, _rows(date=None))
    assert e.cause == "no_dates"
    assert str(e).startswith(f"none of the {N} valid headlines of run dead has a date")
    assert "--split NAME=FROM..TO" in str(e) and "TICKERTAG_CURATE_SPLITS" in str(e)
    out = _curated(settings)
    assert sorted(p.name for p in out.iterdir()) == [ERROR_FILE]  # no train/valid/test
    rec = json.loads((out / ERROR_FILE).read_text())
    assert (rec["run_id"], rec["cause"], rec["error"]) == ("dead", "no_dates", str(e))


def test_all_invalid_answers(settings: Settings):
    e = _fail(settings, _rows(valid=False, invalid_reason="not JSON"))
    assert e.cause == "all_invalid"
    assert str(e).startswith(f"all {N} answers of run dead are invalid")
    assert f"most common reason: not JSON, {N} answers" in str(e)


def test_no_company_in_any_headline(settings: Settings):
    e = _fail(settings, _rows(entities=[], companies=[], normalized=[]))
    assert e.cause == "no_companies"
    assert str(e).startswith(f"none of the {N} headlines of run dead in the splits names a "
                             "company")
    assert "no valid answer names a company" in str(e)


def test_dates_outside_the_splits_say_which_dates_to_pass(settings: Settings):
    rows = _rows()
    days = sorted(r["date"][:10] for r in rows)
    e = _fail(settings, rows, {"splits": {"train": (2030, 2031)}})
    assert e.cause == "outside_splits"
    assert f"none of the {N} dated headlines of run dead (dated {days[0]}..{days[-1]})" in str(e)
    assert "splits train=2030..2031 (options)" in str(e)
    assert str(e).endswith("pass --split NAME=FROM..TO (repeatable) or set "
                           f"TICKERTAG_CURATE_SPLITS with ranges within {days[0]}..{days[-1]}")


def test_companies_only_in_undated_headlines(settings: Settings):
    rows = _rows()
    for i, r in enumerate(rows):
        if i % 2:
            r.update(entities=[], companies=[], normalized=[])
        else:
            r["date"] = None
    e = _fail(settings, rows)
    assert e.cause == "no_companies"
    assert str(e).startswith(f"none of the {N // 2} headlines of run dead in the splits names "
                             "a company")
    assert f"the {N // 2} that name one are outside the splits" in str(e)
    assert f"({N // 2} of them undated)" in str(e)


def test_no_results(settings: Settings):
    e = _fail(settings, [])
    assert e.cause == "no_results" and str(e).startswith("run dead has no results")


def test_every_sampled_span_invalid(settings: Settings):
    bad = [{"start": 0, "end": 3, "label": "Company", "text": "nope"}]
    e = _fail(settings, _rows(entities=bad, companies=["nope"], normalized=["Nope"]),
              {"company_fraction": 1.0})
    assert e.cause == "invalid_spans"
    assert str(e).startswith(f"all {N} sampled headlines of run dead have entity spans")
    assert not (_curated(settings) / "train.jsonl").exists()


def test_a_good_curation_clears_the_failure_record(settings: Settings):
    _fail(settings, _rows(date=None))
    fill_store(Path(settings.results_dir), "dead", _rows())  # the same batch ids: rewritten
    rep = curate_run("dead", {}, settings)
    assert sum(rep["splits"].values()) > 0
    assert not (_curated(settings) / ERROR_FILE).exists()


def test_cli_exits_1_with_one_line(results_dir: Path):
    from tickertag.cli import _register_all, app

    fill_store(results_dir, "nodates", _rows(date=None))
    _register_all()
    r = CliRunner().invoke(app, ["curate", "nodates"])
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, r.stderr
    assert err[0].startswith(f"curate: none of the {N} valid headlines of run nodates has a "
                             "date")
    assert "--split NAME=FROM..TO" in err[0] and "TICKERTAG_CURATE_SPLITS" in err[0]
    assert "written to" not in r.stdout and "Traceback" not in r.output


def test_task_fails_once_with_the_cause_and_starts_no_link(settings: Settings, monkeypatch,
                                                            caplog):
    from common.celery_app import app
    from workers.curate import tasks

    fill_store(Path(settings.results_dir), "dead", _rows(date=None))
    monkeypatch.setattr(tasks, "get_settings", lambda: settings)
    sent: list[str] = []
    monkeypatch.setattr(app, "send_task", lambda name, *a, **k: sent.append(name))
    with caplog.at_level(logging.ERROR, logger=tasks.__name__):
        res = tasks.curate_task.apply(args=["dead"])
    assert res.state == "FAILURE" and isinstance(res.result, EmptyCuration)
    assert res.result.cause == "no_dates" and sent == []
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [f"curate dead: nothing curated (no_dates): {res.result}"]
    assert json.loads((_curated(settings) / ERROR_FILE).read_text())["cause"] == "no_dates"


def test_task_through_a_worker_is_acked_not_redelivered(make_settings, workers, celery_app):
    """acks_late: a failed task is acknowledged, so the dead run is not curated in a loop."""
    import redis

    s = make_settings()
    fill_store(Path(s.results_dir), s.run_id, _rows(date=None))
    w = workers(s, queue="curate", concurrency=1)
    res = celery_app.send_task("tickertag.curate.run", args=[s.run_id], queue="curate",
                               routing_key="curate")
    with pytest.raises(EmptyCuration) as e:
        res.get(timeout=120)
    assert e.value.cause == "no_dates" and res.state == "FAILURE"
    r = redis.Redis.from_url(s.redis_dsn())

    def ours(raw: bytes) -> bool:  # a message about this run (the queues are shared)
        msg = json.loads(raw)
        msg = msg[0] if isinstance(msg, list) else msg  # unacked: [message, exchange, key]
        return s.run_id in base64.b64decode(msg["body"]).decode()

    deadline = time.monotonic() + 30  # the ack follows the failure's result
    while any(ours(v) for v in r.hvals("unacked")):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(3)  # a redelivery or a link task would show in the log by now
    assert not any(ours(v) for v in r.lrange("curate", 0, -1) + r.hvals("unacked"))
    log = w.tail(200_000)
    assert log.count(f"curate {s.run_id}: nothing curated (no_dates)") == 1
    assert "Traceback" not in log and "Task tickertag.curate.link[" not in log, log
