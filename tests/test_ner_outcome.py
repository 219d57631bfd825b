"""The ``ner`` queue records through the same ``Run.record_batch`` as annotation: a batch whose
earlier attempt left a dead letter (its ledger write failed, so it was redelivered) and whose
next attempt succeeds ends as results only, never as results and a dead letter at once."""

from __future__ import annotations

import pytest

from common.run import Run
from training.config import TrainConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    from training.runner import run_training

    out = tmp_path_factory.mktemp("tiny-spacy")
    run_training(TrainConfig(kind="spacy", max_train=80, max_valid=20, epochs=1, output=str(out)))
    return str(out)


def test_a_ner_success_after_a_dead_attempt_leaves_one_outcome(model, make_settings,
                                                                monkeypatch):
    from workers.ner import batch

    s = make_settings()
    monkeypatch.setattr(batch, "get_settings", lambda: s)
    heads = [{"id": f"n{i}", "text": t} for i, t in enumerate(
        ["UBS Maintains Neutral on Agilent Technologies", "Alcoa Shares Fall After Earnings",
         "Adobe To Acquire Figma"])]
    run = Run(s.run_id, s)
    # the earlier attempt dead-lettered the batch; its ledger write failed, so it came back
    run.store.write_dead("nb", heads, error="task: boom", error_type="task", attempts=4)
    out = batch.tag_batch(s.run_id, "nb", heads, model)
    assert out["headlines_done"] == 3
    assert sorted(r["id"] for r in run.store.iter_results()) == ["n0", "n1", "n2"]
    assert list(run.store.iter_dead()) == []
    st = run.ledger.stats()
    assert (st["headlines_done"], st["headlines_dead"], st["batches_finished"]) == (3, 0, 1)
