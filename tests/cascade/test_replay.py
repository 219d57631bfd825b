"""The replay endpoint is a real OpenAI-compatible server: the annotate path's own client,
grammar and parsing get the recorded answers back as spans, and a headline the recording lacks
fails as a non-retriable HTTP error (a dead letter in a run), never as an empty answer."""

from __future__ import annotations

import httpx
import pytest

from cascade.replay import RECORDING, Recording
from common.records import Headline
from workers.annotate import aio
from workers.annotate.batch import annotate_headlines
from workers.annotate.llm import LLMError

pytestmark = pytest.mark.slow


def test_recorded_answers_come_back_as_the_recorded_spans_through_the_annotate_path(
        replay, make_settings):
    rec = Recording.load(RECORDING)
    rows = [r for r in rec.rows.values() if len(r["entities"]) >= 2][:3]
    rows.append(next(r for r in rec.rows.values() if not r["entities"]))
    missing = "Nobody Recorded An Answer For This Headline About Acme Corp"
    heads = [Headline(id=f"h{i}", text=r["text"]) for i, r in enumerate(rows)]
    heads.append(Headline(id="missing", text=missing))
    s = make_settings(max_retries=2, backoff_base_s=0.01)
    # a model name of this test's own: answers cached by another test are not this test's
    s = s.model_copy(update={"llm_base_url": replay, "llm_model": f"replay-{s.run_id}"})
    out = aio.run(annotate_headlines(heads, s))

    by_id = {r["id"]: r for r in out.results}
    for i, r in enumerate(rows):
        got = by_id[f"h{i}"]
        assert got["valid"] and got["response_format"] == "llama.cpp"
        assert [(e["start"], e["end"]) for e in got["entities"]] == [
            (e["start"], e["end"]) for e in r["entities"]]
        assert got["usage"]["prompt_tokens"] > 100  # the system prompt travelled
    [(failed, err)] = out.failed
    assert failed["id"] == "missing" and isinstance(err, LLMError) and err.status == 404
    stats = httpx.get(f"{replay}/stats").json()
    assert stats["missing"] == 1  # asked once: a 404 is never retried
    assert stats["answered"] == len(rows) and stats["recorded"] == len(rec)
    models = httpx.get(f"{replay}/v1/models").json()
    assert models["data"][0]["id"] == "replay"
    bad = httpx.post(f"{replay}/v1/chat/completions", json={"messages": []})
    assert bad.status_code == 400


def test_replayed_answers_align_back_to_the_recorded_spans_almost_everywhere():
    """Replay returns strings, as an LLM does; aligning them is the worker's job and is not
    perfect (a name written twice is tagged twice). The bundled recording survives it at
    F1 >= 0.99: what the cascade is measured with is what the recording says."""
    fid = Recording.load(RECORDING).fidelity()
    assert fid["headlines"] == 1962
    assert fid["f1"] >= 0.99, fid
