"""A run's LLM budget (``TICKERTAG_BUDGET_USD``): once the run's tokens cost it, the producer
stops sending (the rest stays resumable), workers dead-letter batches as ``budget`` without
calling the LLM, and ``status`` says so. Real Redis and Celery app; spend is what the ledger's
token counters price."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from worker_env import settings_env

from common.run import Run
from producer.produce import Producer
from producer.requeue import requeue_dead

TICKERTAG = str(Path(sys.executable).parent / "tickertag")


def _rows(n: int) -> list[dict[str, Any]]:
    return [{"title": f"Budget Company {i} Raises Guidance", "date": "2015-03-02",
             "stock_symbol": "A"} for i in range(n)]


def test_the_producer_stops_at_the_budget_and_a_later_produce_resumes(make_settings, celery_app,
                                                                     monkeypatch):
    s = make_settings(batch_size=10, auto_curate=False, budget_usd=0.01,
                      price_input_per_mtok=1.0, price_output_per_mtok=1.0)
    run = Run(s.run_id, s)
    real_flush = Producer._flush

    def flush_then_spend(self: Producer, buf: list[dict]) -> None:
        real_flush(self, buf)
        run.ledger.count("prompt_tokens", 6_000)  # each batch's answers cost $0.006

    monkeypatch.setattr(Producer, "_flush", flush_then_spend)
    rep = Producer(celery_app, s).run(_rows(50), "budget.csv")
    assert rep.budget_reached and (rep.batches, rep.enqueued) == (2, 20)  # $0.012 >= $0.01
    assert run.ledger.meta()["budget_reached"] == "0.01"
    assert not run.ledger.stats().get("produced_at")  # stopped early: not complete

    more = s.model_copy(update={"budget_usd": 1.0})
    rep2 = Producer(celery_app, more).run(_rows(50), "budget.csv")
    assert not rep2.budget_reached and rep2.enqueued == 30  # the rest, nothing twice
    assert run.ledger.stats()["headlines_enqueued"] == 50


def test_a_worker_past_the_budget_calls_nothing_and_keeps_the_batch_for_requeue(
        make_settings, celery_app):
    from workers.annotate.batch import run_batch

    # an endpoint nobody listens on: a call would end as a "connection" dead letter instead
    s = make_settings(llm_base_url="http://127.0.0.1:9", max_retries=0, budget_usd=0.001,
                      price_input_per_mtok=1.0, price_output_per_mtok=1.0, auto_curate=False)
    run = Run(s.run_id, s)
    run.ledger.count("prompt_tokens", 2_000)  # $0.002 spent
    heads = [{"id": f"b{i}", "text": f"Budget Headline {i}"} for i in range(3)]
    run.ledger.batch_enqueued(3)
    out = run_batch(s.run_id, "bb", heads, s)
    assert out == {"batch_id": "bb", "dead": True, "error_type": "budget"}
    (dead,) = run.store.iter_dead()
    assert dead["error_type"] == "budget" and dead["headlines"] == heads
    assert dead["task"] == "tickertag.annotate.batch"
    st = run.ledger.stats()
    assert (st["headlines_dead"], st["llm_calls"]) == (3, 0)

    env = {**os.environ, **settings_env(s), "TICKERTAG_BUDGET_USD": "0.001",
           "TICKERTAG_PRICE_INPUT_PER_MTOK": "1.0"}
    p = subprocess.run([TICKERTAG, "status", "--run", s.run_id, "--json"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["budget"] == {"budget_usd": 0.001, "spent_usd": 0.002,
                                              "reached": True}
    assert requeue_dead(celery_app, s, s.run_id, "budget") == (1, 3)


def test_the_estimate_counts_distinct_valid_headlines_and_prices_their_tokens(make_settings):
    from producer.estimate import COMPLETION_TOKENS, estimate
    from workers.annotate.prompt import build_messages

    s = make_settings(price_input_per_mtok=2.0, price_output_per_mtok=4.0)
    rows = [*_rows(3), _rows(1)[0], {"title": "   ", "date": "2015-01-01"}]  # a repeat, a blank
    est = estimate(rows, s, count=lambda text: len(text.split()))
    fixed = sum(len(m["content"].split()) for m in build_messages(""))
    words = sum(len(r["title"].split()) for r in _rows(3))
    assert (est["rows"], est["headlines"], est["rejected"]) == (5, 3, 1)
    assert est["prompt_tokens"] == 3 * fixed + words
    assert est["completion_tokens"] == 3 * COMPLETION_TOKENS
    assert est["usd"] == round((est["prompt_tokens"] * 2 + est["completion_tokens"] * 4) / 1e6, 6)
    assert est["prompt_tokens_counted_by"] == "tokenizer"
    assert estimate(rows, s)["prompt_tokens_counted_by"] == "chars/4"
