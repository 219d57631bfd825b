"""Two bounds a long-running service needs: the spaCy vocabulary does not grow with the new
words of each headline, and one large request cannot hold the model while small ones wait."""

from __future__ import annotations

import asyncio
import re
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from spacy.language import Language

from common.paths import LABELED_DIR
from training.baselines import SpacyTagger, build_spacy
from training.data import read_jsonl
from training.inference import load_tagger
from workers.ner.service import MicroBatcher, create_app

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.serve_memory import fresh_headlines  # noqa: E402


@pytest.fixture(scope="module")
def spacy_dir(tmp_path_factory) -> Path:
    """The spaCy baseline (en_core_web_sm's pipeline, ``ORG``): a real pretrained NER that
    needs no training."""
    out = tmp_path_factory.mktemp("spacy")
    build_spacy(str(out))
    return out


@pytest.fixture(scope="module")
def spacy_tagger(spacy_dir: Path) -> SpacyTagger:
    tagger = load_tagger(spacy_dir)
    assert isinstance(tagger, SpacyTagger)
    return tagger


def _lexemes(nlp: Language) -> int:
    # ``len(nlp.vocab)`` is a counter spaCy never lowers, so count the lexeme table itself
    return sum(1 for _ in nlp.vocab)


def test_spacy_vocabulary_stays_at_its_size_after_the_warm_up_while_new_words_stream_in(
        spacy_dir):
    tagger = load_tagger(spacy_dir)  # its own: the shared one has tagged other texts
    nlp = tagger.nlp
    loaded = (len(nlp.vocab.strings), _lexemes(nlp))
    tagger.warm_left = 64  # the first batch warms the tokenizer's cache
    tagger.predict(list(fresh_headlines(64)))
    warm = (len(nlp.vocab.strings), _lexemes(nlp))
    for b in range(1, 9):
        spans = tagger.predict(list(fresh_headlines(64, start=64 * b)))
        assert len(spans) == 64
        assert (len(nlp.vocab.strings), _lexemes(nlp)) == warm, f"batch {b}"
    assert tagger.warm_left == 0 and warm[0] > loaded[0]
    assert tagger.new_strings > warm[0] - loaded[0] + 8 * 64  # new words were tagged
    tagger.rebuild()  # what predict does after ``rebuild_after`` new strings
    assert tagger.nlp is not nlp
    assert (tagger.new_strings, tagger.warm_left) == (0, tagger.warm_texts)
    assert (len(tagger.nlp.vocab.strings), _lexemes(tagger.nlp)) == loaded


def test_spacy_spans_are_the_same_with_the_bounded_vocabulary(spacy_dir, spacy_tagger,
                                                              monkeypatch):
    """The same spans as spaCy run without a memory zone (as before the bound), call by call
    through warm-ups, zones and rebuilds of the pipeline, and again on whole passes."""
    from training.spacy_parts import predict_spans

    texts = [r["text"] for r in read_jsonl(LABELED_DIR / "benzinga_gold_test.jsonl")]
    texts += list(fresh_headlines(150, start=10_000))
    plain = load_tagger(spacy_dir)
    expected = predict_spans(plain.nlp, texts, 32, plain.labels)
    assert sum(map(len, expected)) > 100  # a test that compares spans, not empty lists
    monkeypatch.setattr(spacy_tagger, "rebuild_after", 300)
    monkeypatch.setattr(spacy_tagger, "warm_texts", 32)
    spacy_tagger.rebuild()
    first = spacy_tagger.nlp
    assert [s for i in range(0, len(texts), 32) for s in spacy_tagger.predict(texts[i:i + 32])
            ] == expected
    assert spacy_tagger.nlp is not first  # rebuilt on the way
    assert spacy_tagger.predict(texts) == expected
    assert spacy_tagger.predict(texts, batch_size=7) == expected


class _Recorder:
    """A stand-in model that records each call's texts and threshold; its first call waits
    for ``release`` so a test can queue requests while the model is busy."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], float | None]] = []
        self.started, self.release = threading.Event(), threading.Event()

    def predict(self, texts: list[str], threshold: float | None = None) -> list[list[str]]:
        self.calls.append((list(texts), threshold))
        if len(self.calls) == 1:
            self.started.set()
            assert self.release.wait(30)
        return [[f"spans of {t}"] for t in texts]


Request = tuple[list[str], float | None]


async def _while_first_call_runs(batcher: MicroBatcher, model: _Recorder, first: Request,
                                 later: list[Request]) -> list:
    """Submit ``first``; once the model is inside its first call, submit each of ``later``
    (texts, threshold), then let the model go on. Returns every request's result."""
    batcher.start()
    tasks = [asyncio.ensure_future(batcher.submit(*first))]
    while not model.started.is_set():
        await asyncio.sleep(0.001)
    for req in later:
        tasks.append(asyncio.ensure_future(batcher.submit(*req)))
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)  # every request is in the queue
    model.release.set()
    res = await asyncio.gather(*tasks)
    await batcher.stop()
    return res


def test_a_large_request_is_tagged_in_pieces_and_a_small_one_gets_the_model_between_them():
    model = _Recorder()
    large = [f"L{i}" for i in range(10)]
    res = asyncio.run(_while_first_call_runs(MicroBatcher(model, max_batch=4), model,
                                             (large, None), [(["S"], None)]))
    assert [texts for texts, _ in model.calls] == [
        ["L0", "L1", "L2", "L3"], ["S"], ["L4", "L5", "L6", "L7"], ["L8", "L9"]]
    assert res == [[[f"spans of {t}"] for t in large], [["spans of S"]]]


def test_each_model_call_stays_within_the_character_budget_and_thresholds_stay_apart():
    model = _Recorder()
    long = [f"{i}" * 40 for i in range(6)]  # 40 characters each, budget 100: 2 a call
    batcher = MicroBatcher(model, max_batch=64, max_chars=100)
    res = asyncio.run(_while_first_call_runs(
        batcher, model, (long, None), [(["a" * 10], None), (["b" * 10], 0.9), (["c" * 10], None)]))
    assert model.calls == [
        (long[0:2], None),  # 80 characters: a third text would make 120
        (["a" * 10, "c" * 10], None),  # small requests share a call, without a piece of long
        (["b" * 10], 0.9),  # its own threshold, its own call, before long's next turn
        (long[2:4], None),
        (long[4:6], None)]
    assert res[0] == [[f"spans of {t}"] for t in long]
    assert res[1:] == [[["spans of " + "a" * 10]], [["spans of " + "b" * 10]],
                       [["spans of " + "c" * 10]]]


def test_a_request_whose_client_left_stops_using_the_model():
    model = _Recorder()

    async def main():
        batcher = MicroBatcher(model, max_batch=2)
        batcher.start()
        big = asyncio.ensure_future(batcher.submit([f"L{i}" for i in range(8)], None))
        while not model.started.is_set():
            await asyncio.sleep(0.001)
        big.cancel()  # what uvicorn does when the client disconnects
        small = asyncio.ensure_future(batcher.submit(["S"], None))
        await asyncio.sleep(0.01)
        model.release.set()
        out = await small
        await batcher.stop()
        return out, batcher.queued

    assert asyncio.run(main()) == ([["spans of S"]], 0)
    assert [texts for texts, _ in model.calls] == [["L0", "L1"], ["S"]]


def _model_calls(client: TestClient) -> int:
    text = client.get("/metrics").text
    return int(float(re.search(r"^tickertag_ner_batch_size_count (\S+)", text, re.M)[1]))


def test_over_http_a_one_headline_request_finishes_while_a_large_one_is_still_tagged(
        spacy_dir, spacy_tagger):
    """64 texts of 2,000 characters through the real service and the spaCy baseline; a
    one-headline request sent once the large one holds the model is answered while most of
    the large one is still to tag, and the large one's spans are those of one plain call."""
    gold = " ".join(r["text"] for part in ("train", "valid", "test")
                    for r in read_jsonl(LABELED_DIR / f"benzinga_gold_{part}.jsonl"))
    large = [gold[i * 2000:(i + 1) * 2000] for i in range(64)]
    assert all(len(t) == 2000 for t in large)
    done: dict[str, float] = {}
    replies: dict = {}
    with TestClient(create_app(str(spacy_dir))) as client:
        calls = _model_calls(client)

        def send_large() -> None:
            replies["large"] = client.post("/v1/ner", json={"texts": large})
            done["large"] = time.perf_counter()

        t = threading.Thread(target=send_large)
        t.start()
        deadline = time.monotonic() + 60
        while _model_calls(client) == calls:  # until the large request holds the model
            assert time.monotonic() < deadline
            time.sleep(0.005)
        small = client.post("/v1/ner", json={"texts": ["Mizuho Maintains Buy on Autodesk"]})
        done["small"] = time.perf_counter()
        calls_at_small = _model_calls(client)
        t.join(120)
        calls_at_end = _model_calls(client)
    assert small.status_code == 200 and replies["large"].status_code == 200
    assert done["small"] < done["large"]
    # 64 x 2,000 characters are 16 calls of 8,000: when the small request was answered, at
    # least half of the large one was still to tag (before, it was one call, done by then)
    assert calls_at_end - calls_at_small >= 8, (calls, calls_at_small, calls_at_end)
    assert len(replies["large"].json()["entities"]) == 64
    assert [[(e["start"], e["end"]) for e in ents] for ents in replies["large"].json()["entities"]
            ] == [[(s.start, s.end) for s in spans] for spans in spacy_tagger.predict(large)]
