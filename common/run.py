"""One handle per run: its ledger, its result store, its stage directories, finalizing it, and
recording a batch's outcome.

Why one handle: recording an outcome was written once per queue and drifted (the ``ner`` queue
recorded results without dropping an earlier attempt's dead letter, so a headline could end as
both), and finalizing lived in the producer, so workers imported it. Every batch queue now
records through ``Run.record_batch``, which is the one place where "exactly one outcome per
batch, and ledger = store" is kept:

1. the outcome is written under staging names tagged by this copy (readers never see them);
2. the ledger records the batch in one atomic step that is also the fence: only while this
   copy holds the batch's lease, and only the first time;
3. the winning copy renames its staged files into place (results, dead letter: each present or
   removed); a losing copy drops its own. A copy that dies between 2 and 3 leaves the commit in
   the ledger, and the next copy of the batch (late acks redeliver it) finishes the promotion.
"""

from __future__ import annotations

import uuid
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from common.folder import Folder
from common.ledger import RunLedger
from common.publish import publish
from common.settings import Settings
from common.store import ResultStore
from common.task_names import CURATE_TASK


class Lease(Protocol):
    """What the fence of a running batch copy exposes: its lease key, token and TTL."""

    key: str
    token: str
    ttl_ms: int


class Run:
    """A run by id: ``Run(run_id, settings)``."""

    def __init__(self, run_id: str, settings: Settings) -> None:
        self.run_id, self.settings = run_id, settings

    # Built on first use: a verb that only reads counters makes no result directories, and one
    # that only reads files opens no Redis connection.
    @cached_property
    def ledger(self) -> RunLedger:
        return RunLedger.from_url(self.settings.redis_dsn(), self.run_id,
                                  self.settings.redis_socket_timeout_s)

    @cached_property
    def store(self) -> ResultStore:
        return ResultStore(self.settings.results_dir, self.run_id)

    def stage_dir(self, stage: str) -> Path:
        """``results``, ``dead``, ``curated``, ``reviewed``: where a stage's files live, on a
        store on local disk (``stage`` works on any)."""
        return self.store.stage_dir(stage)

    def stage(self, stage: str) -> Folder:
        """A stage's folder through the store's filesystem: a local directory or fsspec URL."""
        return self.store.stage(stage)

    # -- a batch's outcome ---------------------------------------------------------------
    def finished(self, bid: str) -> bool:
        """Whether the batch is recorded; a recorded outcome whose copy died before promoting
        its files is promoted here first, so "finished" always means "in the store"."""
        if not self.ledger.is_finished(bid):
            return False
        pending = self.ledger.pending_commit(bid)
        if pending:
            self.store.promote(bid, pending["tag"], pending["results"], pending["dead"])
            self.ledger.drop_commit(bid)
        return True

    def record_batch(self, bid: str, results: list[dict[str, Any]], counts: dict[str, float],
                     dead: dict[str, Any] | None = None, lease: Lease | None = None) -> bool:
        """Record one batch's outcome exactly once; False (nothing written) when another copy
        recorded it or holds it. ``dead``: the ``write_dead`` arguments for the headlines that
        failed (``headlines``, ``error``, ``error_type``, ``attempts``, ``task``, ``kwargs``).
        Store and ledger errors propagate (the batch task hands the batch back)."""
        tag = lease.token if lease is not None else uuid.uuid4().hex
        if results:
            self.store.write_results(bid, results, staged=tag)
        if dead:
            self.store.write_dead(bid, staged=tag, **dead)
        outcome = {"tag": tag, "results": bool(results), "dead": bool(dead)}
        won = self.ledger.finish_batch(
            bid, counts, dead=bool(dead), outcome=outcome,
            lease=(lease.key, lease.token, lease.ttl_ms) if lease is not None else None)
        if not won:
            self.store.drop_staged(bid, tag)
            return False
        self.store.promote(bid, tag, bool(results), bool(dead))
        self.ledger.drop_commit(bid)
        return True

    # -- spend ---------------------------------------------------------------------------
    def spent_usd(self) -> float:
        """What the run's LLM tokens cost so far at the configured per-token prices (those a
        provider batch answered at the batch price)."""
        from common.summary import run_token_cost_usd

        return run_token_cost_usd(self.ledger.stats(), self.settings)

    def over_budget(self) -> bool:
        """The run reached ``settings.budget_usd`` (recorded in the run's meta for ``status``)."""
        budget = self.settings.budget_usd
        if budget is None or self.spent_usd() < budget:
            return False
        self.ledger.set_meta(budget_reached=f"{budget:g}")
        return True

    # -- the end of a run ----------------------------------------------------------------
    def maybe_finalize(self, app: Any) -> bool:
        """Start curation once the run is complete (producer done, the ledger ``settled``): one
        message, sent by whichever producer or worker sees the run complete first."""
        if self.settings.auto_curate and self.ledger.try_finalize():
            publish(app, CURATE_TASK, [self.run_id])
            self.ledger.curation_sent()  # until then the lost-batch sweep would send it
            return True
        return False
