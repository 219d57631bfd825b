"""CLI: ``tickertag status``, one run's progress, speed and cost at a glance (summary, budget,
LLM mode and remote batches, cascade escalation, training jobs), once, as JSON, or redrawn live.
The figures come from ``common.summary``; this module only lays them out."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from common.settings import get_settings
from tickertag.cli_common import RunOpt, run_ledger

console = Console()


def _training_table(runs: list[dict]) -> Table:
    """Training jobs on the train queue (progress hashes written by the train workers)."""
    t = Table(title="training runs (train queue)")
    for c in ("run", "status", "kind", "epoch", "step", "loss", "valid F1", "host", "updated"):
        t.add_column(c)
    for p in runs:
        f1, loss = p.get("valid_f1"), p.get("loss")
        ago = time.time() - p["updated_at"] if p.get("updated_at") else None
        t.add_row(p["run_id"], str(p.get("status", "?")), str(p.get("kind", "")),
                  str(p.get("epoch", "")), str(p.get("step", "")),
                  "" if loss is None else f"{loss:.3f}", "" if f1 is None else f"{f1:.3f}",
                  str(p.get("host", "")), "" if ago is None else f"{ago:.0f} s ago")
    return t


def _budget_table(b: dict) -> Table:
    t = Table(title="budget (TICKERTAG_BUDGET_USD)", show_header=False)
    limit = "none" if b["budget_usd"] is None else f"${b['budget_usd']:g}"
    t.add_row("spent / budget", f"${b['spent_usd']:.4f} / {limit}")
    t.add_row("state", "budget reached: nothing more is sent (raise it, then `produce` again and "
              "`requeue --error-type budget`)" if b["reached"] else "within budget")
    return t


def _escalation_table(e: dict) -> Table:
    t = Table(title="LLM escalation (cascade) against the whole pool", show_header=False)
    share = e["calls_share_of_pool"]
    t.add_row("LLM calls / pool headlines",
              f"{e['llm_calls']:,} / {e['pool_headlines']:,}"
              + (f" ({share:.1%})" if share is not None else ""))
    t.add_row("$ spent (token prices)", f"{e['llm_cost_usd']:.4f}")
    t.add_row("$ for the whole pool", f"{e['whole_pool_cost_usd']:.4f}")
    return t


def _llm_mode_tables(m: dict, width: int) -> list[Table]:
    """The run's LLM mode and its last ten remote batches (``--json``: all of them), split
    into tables that fit ``width`` so no id is cut."""
    from tickertag.tables import fitted_tables

    header = ["task batch", "remote batch", "state", "requests", "answered"]
    rows = [[bid, str(r.get("batch") or r.get("file") or ""), str(r.get("status", "")),
             str(r.get("requests", "")), str(r.get("answered", r.get("completed", "")))]
            for bid, r in list(m["remote_batches"].items())[-10:]]
    title = f"LLM mode: {m['mode']}" + (" (provider Batch API)" if m["mode"] == "batch" else "")
    tables = fitted_tables(header, rows, width, title, right={3, 4})
    states = ", ".join(f"{k}: {v}" for k, v in sorted(m["states"].items())) or "none yet"
    tables[-1].caption = (f"{len(m['remote_batches'])} remote batches ({states}); tokens at "
                          f"the batch price: {m['batch_tokens']:,}; $ spent at token prices: "
                          f"{m['spent_usd']:.4f}")
    return tables


def _summary_table(summary: dict, run_id: str, depth: int | None = None,
                   queue: str = "annotate") -> Table:
    t = Table(title=f"tickertag run {run_id}", show_header=False)
    rows = [
        ("headlines enqueued", summary["headlines_enqueued"]),
        ("headlines done", summary["headlines_done"]),
        ("  with companies", summary["with_companies"]),
        ("  spans", summary["spans"]),
        ("  invalid answers (kept, valid=false)", summary["invalid"]),
        ("  repaired answers (list lengths)", summary.get("repaired", 0)),
        ("  hallucinated mentions dropped", summary["hallucinated"]),
        ("headlines dead-lettered", summary["headlines_dead"]),
        ("headlines pending", summary["headlines_pending"]),
        ("batches in flight", summary["batches_in_flight"]),
        ("reopened by late batches (curated again once they finish)", summary["reopened"]),
        ("source rows rejected", summary["rejected"]),
        ("LLM calls / cache hits / retries",
         f"{summary['llm_calls']} / {summary['cache_hits']} / {summary['retries']}"),
        ("tokens (prompt + completion)",
         f"{summary['tokens']} ({summary['prompt_tokens']} + {summary['completion_tokens']})"),
        ("wall time", f"{summary['wall_s']:.1f} s"),
        ("headlines/s", f"{summary['headlines_per_s']:.2f}"),
        ("estimated cost", f"${summary['est_cost_usd']:.4f} at "
                           f"${summary['price_per_hour']:g}/h"),
        ("$ per million headlines", summary["usd_per_million"]),
    ]
    if depth is not None:
        rows.insert(0, (f"{queue} queue depth", depth))
    for k, v in rows:
        t.add_row(k, str(v))
    return t


def status(
    run: RunOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    watch: Annotated[float, typer.Option(help="Refresh every N seconds (0 = once).")] = 0,
) -> None:
    """Show a run's progress, speed and cost.

    Queue depth, in flight, done, failed, dead-lettered, headlines/s, tokens, cost so far."""
    import redis
    from rich.console import Group
    from rich.live import Live

    from common.summary import escalation_cost, queue_depth, run_price_per_hour, run_summary
    from common.task_names import ANNOTATE_TASK, queue_of
    from workers.train.jobs import list_progress

    s = get_settings()
    ledger = run_ledger(run)
    text_client = redis.Redis.from_url(s.redis_dsn(), decode_responses=True)

    def snapshot() -> tuple[dict, Group]:
        summ = run_summary(ledger, run_price_per_hour(ledger, s))
        queue = queue_of(ledger.task() or ANNOTATE_TASK)  # a tag run is on the ner queue
        depth = queue_depth(ledger.r, queue)
        training = list_progress(text_client)
        data = {"run_id": ledger.run_id, "queue": queue, "queue_depth": depth, **summ,
                "training": training}
        parts = [_summary_table(summ, ledger.run_id, depth, queue)]
        meta = ledger.meta()
        if s.budget_usd is not None or meta.get("budget_reached"):
            from common.run import Run

            spent = Run(ledger.run_id, s).spent_usd()
            data["budget"] = {"budget_usd": s.budget_usd, "spent_usd": round(spent, 6),
                              "reached": bool(meta.get("budget_reached"))}
            parts.append(_budget_table(data["budget"]))
        if meta.get("llm_mode") or summ.get("batch_requests"):
            from collections import Counter

            from common.run import Run
            from workers.annotate.batch_api import remote_batches

            remote = remote_batches(meta)
            data["llm_mode"] = {
                "mode": meta.get("llm_mode") or s.llm_mode, "remote_batches": remote,
                "states": dict(Counter(str(r.get("status")) for r in remote.values())),
                "batch_tokens": int(summ.get("batch_prompt_tokens", 0)
                                    + summ.get("batch_completion_tokens", 0)),
                "spent_usd": round(Run(ledger.run_id, s).spent_usd(), 6)}
            if data["llm_mode"]["mode"] == "batch" or remote:
                parts.extend(_llm_mode_tables(data["llm_mode"], console.width))
        pool = meta.get("pool_headlines")
        if pool:  # a cascade escalation: the LLM's spend against labelling the whole pool
            data["escalation"] = escalation_cost(summ, int(pool), s)
            parts.append(_escalation_table(data["escalation"]))
        if training:
            parts.append(_training_table(training))
        return data, Group(*parts)

    if as_json or not watch:
        data, view = snapshot()
        if as_json:
            print(json.dumps(data))
        else:
            console.print(view)
        if not watch:
            return
    if as_json:
        while True:
            time.sleep(watch)
            print(json.dumps(snapshot()[0]), flush=True)
    with Live(snapshot()[1], console=console, refresh_per_second=4) as live:
        while True:  # redraws in place until Ctrl-C
            time.sleep(watch)
            live.update(snapshot()[1])


def register(app: typer.Typer) -> None:
    app.command()(status)
