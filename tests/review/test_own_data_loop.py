"""The loop on a user's own headlines, as the README's "Your own headlines" section runs it, each
step through the `tickertag` command a user types: a 2024-25 CSV -> annotate (the local llama.cpp
LLM, real workers) -> curate (splits from the run's own dates) -> review push -> a reviewer
answers in Argilla -> review pull -> train on the reviewed split -> predict + evaluate on the
reviewed test split -> serve. Real Redis, llama.cpp, Argilla and Celery workers throughout."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from worker_env import settings_env

from common.ledger import RunLedger
from common.paths import LABELED_DIR
from common.services import ManagedProcess, free_port, start_worker, wait_until
from training.data import read_jsonl
from workers.review.argilla_settings import ArgillaSettings
from workers.review.records import QUESTION
from workers.review.server import connect, dataset_name

pytestmark = pytest.mark.slow
TICKERTAG = str(Path(sys.executable).parent / "tickertag")
N = 36


def _cli(env: dict[str, str], *args: str, timeout: float = 600) -> dict:
    """One `tickertag ... --json` call; its last stdout line is the report."""
    p = subprocess.run([TICKERTAG, *args, "--json"], env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, f"tickertag {' '.join(args)}:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}"
    return json.loads(p.stdout.strip().splitlines()[-1])


def _own_csv(path: Path) -> dict[str, list[dict]]:
    """N reviewed headlines re-dated across March 2024 - April 2025 (a stream FNSPID's year
    ranges know nothing of); returns the gold spans by title, the reviewer's answers."""
    gold = read_jsonl(LABELED_DIR / "benzinga_gold_train.jsonl")[:N]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["date", "title", "stock_symbol"])
        for i, g in enumerate(gold):
            w.writerow([(dt.date(2024, 3, 1) + dt.timedelta(days=i * 400 // N)).isoformat(),
                        g["text"], g.get("stock_symbol") or ""])
    return {g["text"]: g["entities"] for g in gold}


def _review(argilla: ArgillaSettings, run: str, answers: dict[str, list[dict]]) -> int:
    """A reviewer submits the gold spans for every record of every split, through the SDK."""
    import argilla as rg

    from workers.review.argilla import find_dataset

    client = connect(argilla)
    user = rg.User(username="own-reviewer", password="reviewer-pass", role="admin",
                   client=client).create()
    client.workspaces[0].add_user(user)
    n = 0
    for split in ("train", "valid", "test"):
        ds = find_dataset(client, dataset_name(run, split, argilla), client.workspaces[0].name)
        batch = []
        for rec in ds.records:
            value = [{"start": e["start"], "end": e["end"], "label": "Company"}
                     for e in answers[rec.fields["text"]]]
            rec.responses.add(rg.Response(QUESTION, value, user_id=user.id, status="submitted"))
            batch.append(rec)
        if batch:
            ds.records.log(batch)
        n += len(batch)
    return n


def test_own_headlines_from_csv_to_a_served_model(llm_server, make_settings, celery_app,
                                                  argilla: ArgillaSettings, tmp_path: Path,
                                                  request):
    s = make_settings(llm_base_url=llm_server, llm_model="smollm2-test", request_timeout_s=120,
                      batch_size=6, auto_curate=False)
    env = {**os.environ, **settings_env(s), "TICKERTAG_AUTO_CURATE": "false",
           "TICKERTAG_ARGILLA_URL": argilla.url,
           "TICKERTAG_ARGILLA_API_KEY": argilla.api_key.get_secret_value(),
           "TICKERTAG_HOME": str(tmp_path)}
    w = start_worker("annotate", tmp_path / "logs", concurrency=2, env=env)
    request.addfinalizer(w.stop)
    src = tmp_path / "my_headlines.csv"
    answers = _own_csv(src)
    run = s.run_id

    # 1. annotate
    rep = _cli(env, "produce", str(src), "--run", run)
    assert rep["enqueued"] == N
    ledger = RunLedger.from_url(s.redis_dsn(), run)
    deadline = time.monotonic() + 600
    while not (ledger.stats()["batches_enqueued"] and ledger.settled()):
        assert time.monotonic() < deadline and w.alive(), w.tail(3000)
        time.sleep(1)
    assert ledger.stats()["headlines_done"] == N, ledger.stats()

    # 2. curate: every headline (fractions 1), splits derived from the 2024-25 dates
    cur = _cli(env, "curate", run, "--fraction", "1", "--empty-fraction", "1")
    assert cur["splits_source"].startswith("derived"), cur
    assert all(cur["splits"].values()), cur["splits"]

    # 3. review: push, a reviewer answers, pull
    _cli(env, "review", "push", run)
    assert _review(argilla, run, answers) == sum(cur["splits"].values())
    pulled = _cli(env, "review", "pull", run)
    reviewed = Path(s.results_dir) / run / "reviewed"
    assert pulled["splits"]["train"]["submitted"] == cur["splits"]["train"]
    for split in ("train", "valid", "test"):
        for row in read_jsonl(reviewed / f"{split}.jsonl"):
            assert [(e["start"], e["end"]) for e in row["entities"]] == \
                [(e["start"], e["end"]) for e in answers[row["text"]]]

    # 4. train on the reviewed split, 5. predict + evaluate on the reviewed test split
    model = tmp_path / "models" / "mine"
    _cli(env, "train", "spacy", "--train", str(reviewed / "train.jsonl"), "--valid",
         str(reviewed / "valid.jsonl"), "--output", str(model), "--epochs", "2")
    pred = tmp_path / "pred.jsonl"
    _cli(env, "predict", "--model", str(model), "--input", str(reviewed / "test.jsonl"),
         "--output", str(pred))
    ev = _cli(env, "evaluate", "--gold", str(reviewed / "test.jsonl"), "--pred", str(pred))
    from common.metrics import score
    from common.spans import Span

    def spans(row: dict) -> list[Span]:
        return [Span(**{k: e[k] for k in ("start", "end", "label", "text")})
                for e in row["entities"]]

    gold_rows, pred_rows = read_jsonl(reviewed / "test.jsonl"), read_jsonl(pred)
    want = score([spans(x) for x in gold_rows], [spans(x) for x in pred_rows])
    assert (ev["f1"], ev["tp"], ev["fn"]) == (want.f1, want.tp, want.fn), ev
    assert ev["n_docs"] == cur["splits"]["test"], ev

    # 6. serve the model over HTTP
    port = free_port()
    srv = ManagedProcess("serve", [TICKERTAG, "serve", "--model", str(model), "--port", str(port)],
                         tmp_path / "logs" / "serve.log", env=env)
    request.addfinalizer(srv.stop)
    wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200,
               120, "serve", srv)
    text = next(iter(answers))
    got = httpx.post(f"http://127.0.0.1:{port}/v1/ner", json={"texts": [text]}, timeout=30).json()
    for e in got["entities"][0]:
        assert text[e["start"]:e["end"]] == e["text"]
