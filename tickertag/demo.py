"""``tickertag demo``: the product's whole loop on the bundled defaults, in plain functions.

Why this shape: a newcomer should see what tickertag is for — an LLM labels headlines, a
compact model learns from reviewed labels and then tags the stream hundreds of times cheaper —
in about five minutes on 2 CPU cores, with each step saying what it did and where its output is.
The CLI only parses options, calls ``run_demo`` and prints; tests call the steps directly.

Steps: (1) the local LLM annotates a slice of the bundled sample through the ``annotate``
queue, then curation runs; (2) the same LLM answers a few gold test headlines, so its F1 is
measured here, not assumed; (3) the fast compact model (``training/configs/student.toml``'s
spaCy NER) is trained on the bundled labelled headlines; (4) it is scored on both test files
with a 95% CI; (5) it tags the whole bundled sample through the ``ner`` queue; (6) one table:
LLM vs compact model, F1, headlines/s, $ per million.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.paths import LABELED_DIR, SAMPLE_CSV, home, to_shared
from common.progress import Tick
from common.settings import Settings

Say = Callable[[str], None]
TEST_FILES = [LABELED_DIR / "benzinga_gold_test.jsonl", LABELED_DIR / "benzinga_gold_test2.jsonl"]


@dataclass
class DemoOptions:
    limit: int = 100  # sample headlines the local LLM annotates (~1/s on 2 cores)
    source: str = str(SAMPLE_CSV)
    run_id: str = "demo"
    workers: int = 1
    llm_test_headlines: int = 30  # gold test headlines the LLM answers for its F1
    model_dir: str = field(default_factory=lambda: str(home() / "models" / "demo-spacy"))
    epochs: int = 6
    logs: Path = field(default_factory=lambda: home() / "var" / "logs")


def follow(run, source_rows, source_name: str, procs, tick: Tick | None, what: str):
    """Produce ``source_rows`` with ``run`` (a Producer) and wait for the run to end."""
    from producer.follow import produce_and_follow, step_tick

    return produce_and_follow(run, source_rows, source_name, procs, step_tick(tick, what))


def annotate_and_curate(o: DemoOptions, s: Settings, procs: list, say: Say,
                        tick: Tick | None) -> dict[str, Any]:
    from common.celery_app import app
    from common.run import Run
    from common.summary import run_price_per_hour, run_summary
    from producer.produce import Producer
    from producer.sources import iter_source
    from workers.curate.pipeline import curate_run
    from workers.curate.sampling import SampleOptions

    rep = follow(Producer(app, s, o.run_id), iter_source(o.source, o.limit), Path(o.source).name,
                 procs, tick, "1/5 annotate (local LLM)")
    run = Run(o.run_id, s)
    ledger, store = run.ledger, run.store
    summ = run_summary(ledger, run_price_per_hour(ledger, s))
    out = store.run_file("annotations.jsonl")
    n = store.export(str(out))
    say(f"[1/5] annotated {rep.enqueued} new headlines ({rep.already_done} already done): "
        f"{summ['headlines_done']} results, {summ['headlines_dead']} dead letters -> {out} ({n} "
        f"rows); re-send dead letters with `tickertag requeue --run {o.run_id}`")
    cur = curate_run(o.run_id, SampleOptions(), s)
    say(f"      curated: {cur['output']}/ (clusters, review sample, year splits; "
        f"{cur.get('sampled', cur.get('results', '?'))} headlines)")
    return summ


def llm_on_gold(o: DemoOptions, s: Settings, procs: list, say: Say,
                tick: Tick | None) -> dict[str, Any]:
    """The local LLM on the first N headlines of the first test file, through the queue."""
    from common.celery_app import app
    from common.metrics import score
    from common.run import Run
    from producer.produce import Producer
    from training.data import read_jsonl, spans_of

    gold = read_jsonl(TEST_FILES[0])[:o.llm_test_headlines]
    run = f"{o.run_id}-llm-test"
    t0 = time.perf_counter()
    follow(Producer(app, s, run), ({"title": g["text"], "date": g.get("date")} for g in gold),
           "gold-test", procs, tick, "2/5 LLM on gold test")
    secs = time.perf_counter() - t0
    by_text = {r["text"]: r for r in Run(run, s).store.iter_results()}
    have = [g for g in gold if g["text"] in by_text]
    sc = score([spans_of(g) for g in have], [by_text[g["text"]]["entities"] for g in have],
               bootstrap=1000)
    say(f"[2/5] local LLM on {len(have)} gold test headlines: F1 {sc.f1:.3f} "
        f"[{sc.ci95[0]:.3f}, {sc.ci95[1]:.3f}] (a 135M model: the plumbing, not the quality; "
        "point TICKERTAG_LLM_BASE_URL at a strong LLM for real labels)")
    return {"f1": sc.f1, "ci95": sc.ci95, "headlines": len(have),
            "headlines_per_s": len(have) / secs if secs else None}


def train_compact(o: DemoOptions, say: Say) -> dict[str, Any]:
    from distil.plan import LABELLED_TRAIN, LABELLED_VALID, STUDENT_CONFIG
    from training.config import TrainConfig
    from training.inference import MANIFEST
    from training.runner import run_training

    if (Path(o.model_dir) / MANIFEST).exists():
        say(f"[3/5] compact model already trained: {o.model_dir} (delete it to retrain)")
        import json

        return json.loads((Path(o.model_dir) / MANIFEST).read_text())
    cfg = TrainConfig.from_file(STUDENT_CONFIG, train=LABELLED_TRAIN, valid=LABELLED_VALID,
                                output=o.model_dir, epochs=o.epochs)
    m = run_training(cfg)
    say(f"[3/5] trained the compact spaCy NER on {m['train_headlines']} labelled headlines in "
        f"{m['train_seconds']:.0f} s -> {o.model_dir} (valid F1 {m['valid_f1']:.3f})")
    return m


def evaluate_compact(o: DemoOptions, say: Say) -> dict[str, Any]:
    from common.metrics import score
    from training.data import read_jsonl, spans_of
    from training.inference import load_tagger

    rows = [r for f in TEST_FILES for r in read_jsonl(f)]
    tagger = load_tagger(o.model_dir)
    t0 = time.perf_counter()
    pred = tagger.predict([r["text"] for r in rows])
    secs = time.perf_counter() - t0
    sc = score([spans_of(r) for r in rows], pred, bootstrap=1000)
    say(f"[4/5] compact model on {len(rows)} test headlines (test + test2): F1 {sc.f1:.3f} "
        f"[{sc.ci95[0]:.3f}, {sc.ci95[1]:.3f}]")
    return {"f1": sc.f1, "ci95": sc.ci95, "headlines": len(rows),
            "in_process_headlines_per_s": len(rows) / secs}


def tag_sample(o: DemoOptions, s: Settings, procs: list, say: Say,
               tick: Tick | None) -> dict[str, Any]:
    from common.celery_app import app
    from common.run import Run
    from common.summary import run_summary
    from common.task_names import NER_TASK
    from producer.produce import Producer
    from producer.sources import iter_source

    run = f"{o.run_id}-tag"
    follow(Producer(app, s, run, task=NER_TASK,
                    task_kwargs={"model_dir": to_shared(o.model_dir),
                                 "threshold": None}),
           iter_source(str(SAMPLE_CSV)), SAMPLE_CSV.name, procs, tick, "5/5 tag (ner queue)")
    summ = run_summary(Run(run, s).ledger, s.ner_price_per_hour)
    say(f"[5/5] tagged {summ['headlines_done']} sample headlines through the ner queue in "
        f"{summ['wall_s']:.1f} s ({summ['headlines_per_s']:.0f}/s, including queue overhead), "
        f"{summ['headlines_dead']} dead; results: {Path(s.results_dir) / run}/results/")
    return summ


def summary_rows(llm: dict, compact: dict, tagged: dict, s: Settings) -> list[dict[str, Any]]:
    """The closing table's rows: what each system costs per million headlines at its price."""
    def usd(price: float, rate: float | None) -> float | None:
        return price / (rate * 3600) * 1e6 if rate else None

    return [
        {"system": "local LLM (SmolLM2-135M, llama.cpp)", "role": "LLM",
         "model": "SmolLM2-135M, llama.cpp", "f1": llm["f1"], "ci95": llm["ci95"],
         "on": f"{llm['headlines']} test headlines", "headlines_per_s": llm["headlines_per_s"],
         "usd_per_million": usd(s.endpoint_price_per_hour, llm["headlines_per_s"]),
         "price": s.endpoint_price_per_hour},
        {"system": "compact spaCy NER (ner queue)", "role": "compact model",
         "model": "spaCy NER, ner queue", "f1": compact["f1"], "ci95": compact["ci95"],
         "on": f"{compact['headlines']} test headlines",
         "headlines_per_s": tagged["headlines_per_s"],
         "usd_per_million": usd(s.ner_price_per_hour, tagged["headlines_per_s"]),
         "price": s.ner_price_per_hour},
    ]


def run_demo(o: DemoOptions, s: Settings, say: Say = print, tick: Tick | None = None,
             llm_up: bool | None = None) -> list[dict[str, Any]]:
    """Start what is missing (Redis, llama.cpp, workers), run the five steps, stop what was
    started; returns the closing table's rows."""
    from common.services import ensure_redis, start_llm_server, start_worker, worker_env

    started: list = []
    llm_proc = None
    try:
        r = ensure_redis(s.redis_dsn(), o.logs)
        if r:
            started.append(r)
        say(f"redis: {'started ' if r else 'using '}{s.redis_dsn().split('@')[-1]}")
        if llm_up is None:
            import httpx

            try:
                llm_up = httpx.get(f"{s.llm_base_url}/v1/models", timeout=2).status_code == 200
            except httpx.HTTPError:
                llm_up = False
        if not llm_up:
            if "127.0.0.1" not in s.llm_base_url and "localhost" not in s.llm_base_url:
                raise RuntimeError(f"LLM endpoint {s.llm_base_url} does not answer")
            say(f"llm: starting llama.cpp on port {s.llm_port} (log in {o.logs})")
            llm_proc = start_llm_server(s.llm_port, o.logs, s.llm_gguf, s.llm_ctx,
                                        alias=s.llm_model)
            started.append(llm_proc)
        say(f"llm: {s.llm_base_url} model {s.llm_model}")
        # llama.cpp serves one request at a time: a deep client-side queue only adds timeouts
        env = worker_env(s, TICKERTAG_CONCURRENCY="2", TICKERTAG_AUTO_CURATE="false")
        workers = [start_worker("annotate", o.logs, concurrency=2, env=env)
                   for _ in range(o.workers)]
        started += workers
        summ = annotate_and_curate(o, s, workers, say, tick)
        llm = llm_on_gold(o, s, workers, say, tick)
        for w in workers:  # the LLM is done: give its cores to the compact model
            w.stop()
        if llm_proc is not None:
            llm_proc.stop()
        train_compact(o, say)
        compact = evaluate_compact(o, say)
        ner = [start_worker("ner", o.logs, concurrency=1, pool="prefork",
                            env=worker_env(s, TICKERTAG_NER_THREADS="1")) for _ in range(2)]
        started += ner
        tagged = tag_sample(o, s, ner, say, tick)
        rows = summary_rows(llm, compact, tagged, s)
        rows[0]["annotated"] = summ["headlines_done"]
        return rows
    finally:
        for p in reversed(started):
            p.stop()
