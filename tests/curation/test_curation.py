"""Curation: span conversions (property-based), clustering on real names, sampling, splits,
and the curate task through a real Celery worker."""

from __future__ import annotations

import json
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from common.clustering import Mention, cluster_mentions, fuzzy_pairs, name_key
from common.sampling import sample_headlines, split_of, split_rows
from common.settings import LABELED_DIR
from common.spans import Span
from common.store import ResultStore
from common.tokens import iob_to_char_spans, to_gliner, to_spanmarker, token_to_char_spans, tokenize

WORDS = st.sampled_from(["Apple", "Inc.", "AT&T", "Coca-Cola's", "$TSLA", "(A)", "Dun", "&",
                         "Bradstreet", "rises", "3.5%", "Ma'aden-Alcoa", "JV", ",", "Q3", "é"])


@st.composite
def text_and_spans(draw):
    text = " ".join(draw(st.lists(WORDS, min_size=1, max_size=12)))
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=8))))
    spans, last = [], 0
    for a, b in zip(cuts[::2], cuts[1::2], strict=False):
        a, b = max(a, last), b
        seg = text[a:b]
        a += len(seg) - len(seg.lstrip())
        b -= len(seg) - len(seg.rstrip())
        if a < b:
            spans.append(Span(start=a, end=b, text=text[a:b]))
            last = b
    return text, spans


@settings(max_examples=300, deadline=None)
@given(text_and_spans())
def test_char_token_char_is_identity(ts):
    text, spans = ts
    g = to_gliner(text, spans)
    boundaries = [x for s in spans for x in (s.start, s.end)]
    toks = tokenize(text, boundaries)
    assert [t for t, _, _ in toks] == g["tokenized_text"]
    back = token_to_char_spans(text, toks, g["ner"])
    assert [(s.start, s.end, s.text) for s in back] == [(s.start, s.end, s.text) for s in spans]
    sm = to_spanmarker(text, spans)
    back2 = iob_to_char_spans(text, toks, sm["ner_tags"])
    assert [(s.start, s.end) for s in back2] == [(s.start, s.end) for s in spans]


def real_names() -> list[str]:
    names = []
    for p in sorted(LABELED_DIR.glob("benzinga_gold_*.jsonl")):
        for line in open(p):
            names += [e["text"] for e in json.loads(line)["entities"]]
    return names


def test_clustering_real_names():
    names = real_names()
    assert {"Agilent", "Alcoa", "Arconic"} <= set(names)
    cl = cluster_mentions([Mention(n) for n in [*names, "Agilent Technologies", "Agilent Technologies Inc."]])
    ag = {cl.cluster_of[n] for n in ("Agilent", "Agilent Technologies", "Agilent Technologies Inc.")}
    assert len(ag) == 1
    assert cl.cluster_of["Alcoa"] != cl.cluster_of["Arconic"]
    assert cl.representative[cl.cluster_of["Agilent"]] in ("Agilent", "Agilent Technologies")
    assert len(cl.members) < len(set(names))  # something was merged


def test_ticker_joins_name_only_when_source_symbol_says_so():
    cl = cluster_mentions([Mention("AAPL", "Apple", "AAPL"), Mention("Apple", "Apple", None),
                           Mention("MSFT", "Microsoft", "AAPL"), Mention("Microsoft")])
    assert cl.cluster_of["AAPL"] == cl.cluster_of["Apple"]
    assert cl.cluster_of["MSFT"] != cl.cluster_of["Microsoft"]


def test_name_key_and_blocked_pairs_match_exact_on_real_names():
    assert name_key("The Coca-Cola Company") == "coca cola"
    assert name_key("Agilent Technologies, Inc.") == "agilent technologies"
    keys = sorted({name_key(n) for n in real_names() if len(name_key(n)) >= 4})
    exact = fuzzy_pairs(keys, 85, block=False)
    blocked = fuzzy_pairs(keys, 85, block=True)
    assert blocked <= exact and len(exact - blocked) <= 0.01 * max(1, len(exact))


def test_sampling_fractions_and_determinism():
    clusters = {f"c{i}": {f"h{i}-{j}" for j in range(n)} for i, n in enumerate([1, 10, 40, 200])}
    empty = [f"e{j}" for j in range(100)]
    a = sample_headlines(clusters, empty, 0.05, 0.05, seed=3)
    b = sample_headlines(dict(reversed(list(clusters.items()))), list(reversed(empty)), 0.05,
                         0.05, seed=3)
    assert a == b and a != sample_headlines(clusters, empty, 0.05, 0.05, seed=4)
    per = {c: len(a & ids) for c, ids in clusters.items()}
    assert per == {"c0": 1, "c1": 1, "c2": 2, "c3": 10}
    assert len([x for x in a if x.startswith("e")]) == 5


def test_split_boundaries():
    assert [split_of(d) for d in ("2009-12-31", "2010-01-01", "2016-12-31", "2017-01-01",
                                  "2018-12-31", "2019-01-01", "2020-12-31", "2021-01-01",
                                  None, "n/a")] == [
        None, "train", "train", "valid", "valid", "test", "test", None, None, None]
    splits, outside = split_rows([{"date": "2015-05-05"}, {"date": "2020-01-01"},
                                  {"date": "2009-01-01"}])
    assert [len(splits[k]) for k in ("train", "valid", "test")] == [1, 0, 1] and outside == 1


def _as_results(store: ResultStore) -> int:
    rows = []
    for p in sorted(LABELED_DIR.glob("benzinga_llm_*.jsonl")):
        for line in open(p):
            r = json.loads(line)
            rows.append({"key": f"{r['id']}:m:p", "id": r["id"], "text": r["text"],
                         "date": r["date"], "stock_symbol": r["stock_symbol"],
                         "entities": r["entities"], "companies": [e["text"] for e in r["entities"]],
                         "normalized": [e["text"] for e in r["entities"]], "valid": True})
    store.write_results("b0", rows)
    return len(rows)


def test_curate_task_through_a_worker(make_settings, workers, celery_app, tmp_path: Path):
    from datasets import load_from_disk

    s = make_settings()
    store = ResultStore(s.results_dir, s.run_id)
    n = _as_results(store)
    workers(s, queue="curate", concurrency=1)
    res = celery_app.send_task("tickertag.curate.run", args=[s.run_id, {"company_fraction": 0.2,
                                                                         "empty_fraction": 0.2}],
                               queue="curate", routing_key="curate")
    rep = res.get(timeout=120)
    assert rep["results"] == n and rep["sampled"] > 0 and rep["clusters"] > 100
    out = Path(rep["output"])
    dd = load_from_disk(str(out / "hf"))
    assert set(dd) == {"train", "valid", "test"}
    assert sum(len(dd[k]) for k in dd) == sum(rep["splits"].values()) == rep["sampled"]
    assert all(r["date"][:4] in {"2019", "2020"} for r in dd["test"])
    for line in (out / "train.jsonl").read_text().splitlines():
        r = json.loads(line)
        for e in r["entities"]:
            assert r["text"][e["start"]:e["end"]] == e["text"]
    g = [json.loads(x) for x in (out / "gliner" / "train.jsonl").read_text().splitlines()]
    assert len(g) == rep["splits"]["train"] and all("tokenized_text" in x for x in g)
    assert "Largest clusters" in (out / "cluster_report.md").read_text()
    time.sleep(0)
