"""The alias table and entity linking (``linking/``, ``tickertag aliases``), on a
tiny corpus written in the test: evidence weights, ambiguity, overrides, persistence, linking,
held-out titles, and the CLI. Fast: no model, no Redis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from common.spans import Span
from linking.build import build_from_rows, build_table
from linking.files import TEST_FILES
from linking.linker import headline_tickers, link, load_cached
from linking.table import PRIOR, VERSION, W_ADJACENT, W_SYMBOL, AliasTable


def cli():
    from tickertag.cli import _register_all, app

    if not app.registered_commands:
        _register_all()
    return app


def row(text: str, mentions: list[str], symbol: str = "") -> dict[str, Any]:
    """A labelled row; each mention is found left to right (a repeated one, repeated)."""
    ents, pos = [], 0
    for m in mentions:
        s = text.index(m, pos)
        ents.append({"start": s, "end": s + len(m), "label": "Company", "text": m})
        pos = s + len(m)
    return {"text": text, "stock_symbol": symbol, "entities": ents}


CORPUS = [
    # Acme: one explicit pairing against three stock-page sightings elsewhere.
    row("Acme Corp (ACME) Raises Guidance", ["Acme Corp", "ACME"], "ZZZ"),
    row("Acme Shares Rise", ["Acme"], "BETA"),
    row("Acme Wins Contract", ["Acme"], "BETA"),
    row("Acme Hires CFO", ["Acme"], "BETA"),
    # One explicit pairing alone links; one stock-page sighting alone does not.
    row("Duo (DUO) Soars After Earnings", ["Duo", "DUO"], "DUO"),
    row("Solo Inc Soars", ["Solo Inc"], "SOLO"),
    # Split evidence: Target is seen as much on TGT's page as on ACTG's.
    row("Target Shares Slide", ["Target"], "TGT"),
    row("Target Cuts Outlook", ["Target"], "TGT"),
    row("Target Corporation Signs Patent License", ["Target Corporation"], "ACTG"),
    row("Target Corp Sued Over Patents", ["Target Corp"], "ACTG"),
    # A stock page's weight is shared by the headline's names.
    row("Mizuho Maintains Buy on Widget", ["Mizuho", "Widget"], "WDGT"),
    # Tickers that become known, so bare spans of them are tickers, not names.
    row("Tesla (TSLA) Sues Rivian", ["Tesla", "TSLA", "Rivian"], "TSLA"),
    row("Agilent Technologies (NYSE: A) Beats", ["Agilent Technologies", "A"], "A"),
    row("Apple, TSLA Report Tonight", ["Apple", "TSLA"], "AAPL"),
    # Names listed with tickers that are not right after them.
    row("Black Diamond: The New North Face? (BDE, VFC)",
        ["Black Diamond", "North Face", "BDE", "VFC"], "BDE"),
    # A stock page's own company, a spelling of it, and a counterpart seen on the page.
    *[row(f"American Airlines {w}", ["American Airlines"], "AAL")
      for w in ("Rises", "Adds Routes", "Cuts Capacity", "Beats", "Sues")],
    *[row(f"American Air {w}", ["American Air"], "AAL") for w in ("Falls", "Hires")],
    *[row(f"Delta {w}", ["Delta"], "AAL") for w in ("Rallies Ahead Of Earnings", "Cuts Fares")],
    # A list after a name is not that name's ticker; exchanges and marks are not tickers.
    row("Sam Likes Alcoa, Coach (AA, COH)", ["Alcoa", "Coach", "AA", "COH"]),
    row("Gadget Corp (NYSE) Gains", ["Gadget Corp", "NYSE"], "ZZZ"),
    row("Cryptzone Protects SharePoint(R)", ["Cryptzone", "R"], "ZZZ"),
]


@pytest.fixture(scope="module")
def table() -> AliasTable:
    return build_from_rows(CORPUS)


def test_explicit_pairing_outweighs_more_stock_page_sightings(table: AliasTable) -> None:
    e = table.entry("Acme Corp")
    assert e is not None and e is table.entry("ACME CORP.") and e.key == "acme"
    assert (e.tickers["ACME"].adjacent, e.tickers["ACME"].symbol) == (1, 0)
    assert (e.tickers["BETA"].adjacent, e.tickers["BETA"].symbol) == (0, 3)
    ranked = e.ranked()
    assert ranked[0][0] == "ACME"  # 1 headline beats 3: stated pairing > stock page
    assert ranked[0][1] == pytest.approx(W_ADJACENT / (W_ADJACENT + 3 * W_SYMBOL + PRIOR))
    # ... but 0.47 is under the link threshold: the stock-page evidence is kept, not ignored.
    assert table.link_name("Acme Corp") == (None, None)
    # ZZZ, the page of the explicit headline, went to nobody (ACME is claimed there).
    assert "ZZZ" not in e.tickers
    # On TSLA's page, TSLA is Tesla's (stated): Rivian, in the same headline, learns nothing.
    assert table.entry("Rivian") is None and table.link_name("Tesla")[0] == "TSLA"


def test_one_pairing_links_one_sighting_does_not(table: AliasTable) -> None:
    assert table.link_name("Duo") == ("DUO", round(W_ADJACENT / (W_ADJACENT + PRIOR), 4))
    assert table.candidates("Solo Inc") == {"SOLO": pytest.approx(1 / (1 + PRIOR))}
    assert table.link_name("Solo Inc") == (None, None)


def test_symbol_weight_is_shared_and_bare_tickers_get_none(table: AliasTable) -> None:
    assert table.entry("Mizuho").tickers["WDGT"].weight == pytest.approx(0.5)
    assert table.entry("Widget").tickers["WDGT"].weight == pytest.approx(0.5)
    # "TSLA" is a known ticker, so "Apple" alone takes AAPL's page, and TSLA learns nothing.
    assert table.entry("Apple").tickers["AAPL"].weight == pytest.approx(1.0)
    assert table.entry("TSLA") is None


def test_listed_tickers_are_shared(table: AliasTable) -> None:
    bd = table.entry("Black Diamond")
    assert {t: ev.listed for t, ev in bd.tickers.items()} == {"BDE": 1, "VFC": 1}
    assert bd.tickers["BDE"].weight == pytest.approx(1.0 + 0.5)  # listed 2/2 + page 1/2
    assert bd.tickers["VFC"].weight == pytest.approx(1.0)


def test_stock_page_alone_links_only_the_pages_company(table: AliasTable) -> None:
    # Delta has as much page evidence as "American Air" (two sightings, alone in the headline)
    delta, air = table.candidates("Delta"), table.candidates("American Air")
    assert delta == pytest.approx(air) and delta["AAL"] >= table.min_score
    # ... but only a spelling of the page's main name is linked; Delta keeps its candidate.
    assert table.link_name("American Air") == ("AAL", round(air["AAL"], 4))
    assert table.link_name("American Airlines")[0] == "AAL"
    assert table.held.get("delta") == "AAL" and table.link_name("Delta") == (None, None)
    assert "american airlines" in table.anchors["AAL"]
    assert [k for k, _ in table.names_for("AAL")] == ["american airlines", "american air"]


def test_bracketed_list_exchange_and_marks(table: AliasTable) -> None:
    coach = table.entry("Coach")
    assert {t: (ev.adjacent, ev.listed) for t, ev in coach.tickers.items()} == {
        "AA": (0, 1), "COH": (0, 1)}
    assert "NYSE" not in table.tickers and "R" not in table.tickers
    # Gadget Corp: no ticker stated, so ZZZ's page is its only evidence.
    assert set(table.candidates("Gadget Corp")) == {"ZZZ"}
    text = "Gadget Corp (NYSE) Gains"
    assert link([Span(start=13, end=17, text="NYSE")], text, table) == [(None, None)]
    text = "Cryptzone Protects SharePoint(R)"
    assert link([Span(start=30, end=31, text="R")], text, table) == [(None, None)]


def test_ambiguous_name_keeps_both_candidates_unlinked(table: AliasTable) -> None:
    cands = table.candidates("Target")
    assert set(cands) == {"TGT", "ACTG"}
    assert cands["TGT"] == pytest.approx(cands["ACTG"])  # "Target Corp" is the same key
    assert max(cands.values()) < table.min_score
    assert table.link_name("Target") == (None, None)


def test_link_on_spans(table: AliasTable) -> None:
    text = "Acme Corp (ACME) And Duo Beat; $NEWT Jumps, A Look At TSLA, Agilent (A), A"
    names = ["Acme Corp", "ACME", "Duo", "NEWT", "TSLA"]
    spans = [Span(**e) for e in row(text, names)["entities"]]
    a = text.index("(A)") + 1
    spans.append(Span(start=a, end=a + 1, text="A"))  # "(A)": shown as a ticker
    spans.append(Span(start=len(text) - 1, end=len(text), text="A"))  # a bare "A"
    got = link(spans, text, table)
    assert got == [(None, None), ("ACME", 1.0), ("DUO", 0.7273), ("NEWT", 0.8), ("TSLA", 0.7),
                   ("A", 1.0), (None, None)]
    # Entity dicts (predict's output records) link the same way.
    dicts = [s.model_dump() for s in spans]
    assert link(dicts, text, table) == got
    assert link([], text, table) == []


def test_headline_tickers_deduplicated_in_text_order(table: AliasTable) -> None:
    text = "Tesla And Duo (DUO) Rise; Duo Beats, Tesla Lags"
    spans = [Span(**e) for e in row(text, ["Tesla", "Duo", "DUO", "Duo", "Tesla"])["entities"]]
    assert table.link_name("Tesla")[0] == "TSLA"
    shuffled = [spans[3], spans[0], spans[2], spans[4], spans[1]]
    links = link(shuffled, text, table)
    assert len(links) == 5
    assert headline_tickers(shuffled, text, table) == ["TSLA", "DUO"]
    assert headline_tickers(shuffled, text, table, links) == ["TSLA", "DUO"]


def test_overrides_set_and_unlink(table: AliasTable, tmp_path: Path) -> None:
    path = table.save(tmp_path / "aliases.json")
    js = tmp_path / "over.json"
    js.write_text(json.dumps({"Target": "tgt", "Duo": None}))
    t = AliasTable.load(path, js)
    assert t.link_name("Target") == ("TGT", 1.0)
    assert t.link_name("Target Corp.") == ("TGT", 1.0)  # by key, like the table
    assert t.link_name("Duo") == (None, None)
    # A span the headline shows as a ticker is still that ticker.
    text = "Duo (DUO) Soars"
    assert link([Span(start=5, end=8, text="DUO")], text, t) == [("DUO", 1.0)]
    toml = tmp_path / "over.toml"
    toml.write_text('[overrides]\n"Solo Inc" = "SOLO"\nTarget = ""\n')
    t2 = AliasTable.load(path, toml)
    assert t2.link_name("Solo Inc") == ("SOLO", 1.0)
    assert t2.link_name("Target") == (None, None)
    with pytest.raises(FileNotFoundError):
        AliasTable.load(path, tmp_path / "missing.toml")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"Target": 3}))
    with pytest.raises(ValueError, match="Target"):
        AliasTable.load(path, bad)


def test_overrides_recorded_at_build_are_reread_on_load(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in CORPUS))
    over = tmp_path / "over.json"
    over.write_text(json.dumps({"Target": "TGT"}))
    t = build_table([corpus], protected=set(), overrides=over)
    assert t.link_name("Target") == ("TGT", 1.0)
    path = t.save(tmp_path / "aliases.json")
    over.write_text(json.dumps({"Target": None, "Acme": "ACME"}))  # edited, no rebuild
    t2 = AliasTable.load(path)
    assert t2.link_name("Target") == (None, None)
    assert t2.link_name("Acme") == ("ACME", 1.0)
    over.unlink()  # a table copied without its overrides still loads
    assert AliasTable.load(path).link_name("Acme") == (None, None)


def test_save_load_round_trip_and_version(table: AliasTable, tmp_path: Path) -> None:
    path = table.save(tmp_path / "a" / "aliases.json")
    data = json.loads(path.read_text())
    assert data["version"] == VERSION
    assert {"built_at", "sources", "entries", "tickers"} <= set(data)
    assert data["entries"]["acme"]["tickers"]["ACME"]["adjacent"] == 1
    back = AliasTable.load(path)
    assert back.best.keys() == table.best.keys()
    for k, (ticker, conf) in table.best.items():
        assert back.best[k][0] == ticker and back.best[k][1] == pytest.approx(conf, abs=1e-3)
    assert back.tickers == table.tickers and back.built_at == table.built_at
    assert back.candidates("Target") == pytest.approx(table.candidates("Target"))
    data["version"] = VERSION + 1
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="version"):
        AliasTable.load(path)


def _real_test_row() -> dict[str, Any]:
    with open(TEST_FILES[0], encoding="utf-8") as f:
        return json.loads(f.readline())


def test_a_cached_table_is_read_again_once_its_file_is_rebuilt(table: AliasTable,
                                                                tmp_path: Path) -> None:
    """A long-running ``ner`` worker keeps its table cached, but not past a rebuild."""
    path = table.save(tmp_path / "aliases.json")
    first = load_cached(str(path))
    assert load_cached(str(path)) is first  # cached: no read per batch
    smaller = build_from_rows(CORPUS[:3])
    smaller.save(path)
    again = load_cached(str(path))
    assert again is not first and again.best.keys() == smaller.best.keys() != first.best.keys()


def test_a_cached_table_is_read_again_once_its_overrides_file_is_edited(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in CORPUS))
    over = tmp_path / "over.json"
    over.write_text(json.dumps({"Target": "TGT"}))
    path = build_table([corpus], protected=set(), overrides=over).save(tmp_path / "aliases.json")
    first = load_cached(str(path))
    assert first.link_name("Target") == ("TGT", 1.0) and load_cached(str(path)) is first
    over.write_text(json.dumps({"Target": None, "Acme": "ACME"}))  # edited, no rebuild
    again = load_cached(str(path))
    assert again.link_name("Target") == (None, None) and again.link_name("Acme") == ("ACME", 1.0)


def test_the_service_reads_a_rebuilt_table_without_a_restart_and_survives_a_broken_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve --aliases``: an edited overrides file, then a half-written table, then a good
    one again, under a running service: each request is answered, from the newest table that
    could be read."""
    import time

    from fastapi.testclient import TestClient

    from common.paths import LABELED_DIR
    from linking.linker import LiveTable
    from training.baselines import build_gazetteer
    from workers.ner.service import create_app

    monkeypatch.setattr(LiveTable, "RETRY_S", 0.1)
    gz = tmp_path / "gz"
    build_gazetteer([str(LABELED_DIR / "benzinga_gold_train.jsonl")], str(gz))
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in CORPUS))
    over = tmp_path / "over.json"
    over.write_text(json.dumps({"Solo Inc": "SOLO"}))
    path = build_table([corpus], protected=set(), overrides=over).save(tmp_path / "aliases.json")
    good = path.read_text()

    def tesla(client: TestClient) -> str | None:
        r = client.post("/v1/ner", json={"texts": ["Tesla (TSLA) Sues Rivian"]})
        assert r.status_code == 200, r.text
        return {e["text"]: e["ticker"] for e in r.json()["entities"][0]}["Tesla"]

    def becomes(client: TestClient, ticker: str) -> None:
        deadline = time.monotonic() + 20
        while tesla(client) != ticker:
            assert time.monotonic() < deadline, f"never {ticker}"
            time.sleep(0.05)

    with TestClient(create_app(str(gz), aliases=str(path))) as client:
        assert tesla(client) == "TSLA"
        over.write_text(json.dumps({"Tesla": "TSLQ", "Solo Inc": "SOLO"}))
        becomes(client, "TSLQ")
        path.write_text(good[: len(good) // 2])  # caught half-written
        for _ in range(5):
            assert tesla(client) == "TSLQ"  # the old table, every time
            time.sleep(0.15)
        over.write_text(json.dumps({"Solo Inc": "SOLO"}))
        path.write_text(good)
        becomes(client, "TSLA")


def test_test_titles_never_build_a_table(tmp_path: Path) -> None:
    held = _real_test_row()
    assert held["entities"], "the first test row should name a company"
    name = held["entities"][0]["text"]
    leaked = dict(held, text="  " + held["text"].upper() + " ")  # same title, other case
    shift = 2
    leaked["entities"] = [dict(e, start=e["start"] + shift, end=e["end"] + shift,
                               text=leaked["text"][e["start"] + shift:e["end"] + shift])
                          for e in held["entities"]]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps(leaked) + "\n" + json.dumps(CORPUS[1]) + "\n")
    t = build_table([corpus])  # default protection: the held-out files' titles
    assert t.sources[0]["protected"] == 1 and t.sources[0]["used"] == 1
    assert t.entry(name) is None and t.entry("Acme") is not None
    unprotected = build_table([corpus], protected=set())  # the check above can fail
    assert unprotected.entry(name) is not None
    with pytest.raises(ValueError, match="test file"):
        build_table([TEST_FILES[1]])


def test_cli_build_show_evaluate(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in CORPUS))
    out = tmp_path / "m" / "aliases.json"
    runner = CliRunner()
    r = runner.invoke(cli(), ["aliases", "build", "--input", str(corpus), "--output", str(out),
                              "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["output"] == str(out) and out.exists()
    assert res["version"] == VERSION and res["sources"][0]["used"] == len(CORPUS)
    assert res["linked_names"] == AliasTable.load(out).linked_names() > 0

    r = runner.invoke(cli(), ["aliases", "show", "Duo", "--table", str(out), "--json"])
    assert r.exit_code == 0, r.output
    shown = json.loads(r.output)
    assert (shown["ticker"], shown["key"]) == ("DUO", "duo")
    assert shown["entry"]["tickers"]["DUO"]["adjacent"] == 1
    assert shown["entry"]["tickers"]["DUO"]["examples"] == ["Duo (DUO) Soars After Earnings"]
    r = runner.invoke(cli(), ["aliases", "show", "Target", "--table", str(out)])
    assert r.exit_code == 0 and "no ticker" in r.output
    assert "TGT" in r.output and "ACTG" in r.output
    r = runner.invoke(cli(), ["aliases", "show", "Nobody", "--table", str(out)])
    assert r.exit_code == 0 and "not in the table" in r.output

    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(x) + "\n" for x in [
        row("Duo Beats Estimates", ["Duo"], "DUO"),        # eligible, hit
        row("Target Shares Fall", ["Target"], "TGT"),      # eligible (TGT known), no link
        row("Zeta Rises", ["Zeta"], "ZETA"),               # unknown: not eligible
        row("Markets Open Higher", [], "SPY"),             # no span: not counted
    ]))
    reviewed = tmp_path / "reviewed.jsonl"
    recs = [("Duo Beats Estimates", "Duo", "DUO"), ("Acme Corp Hires", "Acme Corp", None),
            ("Target Shares Fall", "Target", "TGT"), ("Duo Unit Sold", "Duo", "DUOX")]
    reviewed.write_text("".join(json.dumps(
        {"text": t, "start": t.index(s), "end": t.index(s) + len(s), "span": s, "ticker": k}
    ) + "\n" for t, s, k in recs))
    r = runner.invoke(cli(), ["aliases", "evaluate", "--table", str(out), "--test", str(gold),
                              "--reviewed", str(reviewed), "--json"])
    assert r.exit_code == 0, r.output
    ev = json.loads(r.output)
    assert (ev["eligible"], ev["hits"], ev["hit_rate"]) == (2, 1, 0.5)
    assert ev["headlines_with_spans"] == 3 and ev["symbol_in_linked"] == pytest.approx(1 / 3, 1e-3)
    assert (ev["spans"], ev["linked_spans"]) == (3, 1)
    rv = ev["reviewed"]
    assert (rv["records"], rv["links_made"], rv["correct"]) == (4, 2, 1)
    assert (rv["precision"], rv["recall"], rv["null_kept"]) == (0.5, pytest.approx(1 / 3, 1e-3),
                                                                1.0)
    assert [w["checked"] for w in rv["wrong"]] == ["DUOX"]
    r = runner.invoke(cli(), ["aliases", "evaluate", "--table", str(out), "--test", str(gold),
                              "--reviewed", str(reviewed)])
    assert r.exit_code == 0 and "hit rate" in r.output and "1/2" in r.output
    r = runner.invoke(cli(), ["aliases", "evaluate", "--table", str(tmp_path / "none.json")])
    assert r.exit_code == 1


# -- linking where the product outputs entities: predict, serve, the ner workers -------------
def test_predict_serve_and_ner_workers_carry_tickers(table: AliasTable, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     redis_url: str) -> None:
    import json
    import sys

    import httpx

    from common.paths import LABELED_DIR
    from common.services import ManagedProcess, free_port, wait_until
    from common.settings import get_settings
    from common.store import ResultStore
    from training.baselines import build_gazetteer
    from training.inference import load_tagger
    from workers.ner.batch import tag_batch
    from workers.ner.predict_file import predict_file

    gz = tmp_path / "gz"
    build_gazetteer([str(LABELED_DIR / "benzinga_gold_train.jsonl")], str(gz))
    path = table.save(tmp_path / "aliases.json")
    text = "Tesla (TSLA) Sues Rivian; Duo Raises Guidance"
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"id": "x1", "text": text}) + "\n")

    class Fixed:  # a model with known spans, so the links are the table's, not the model's
        kind = "fixed"
        threshold = 0.5

        def predict(self, texts, threshold=None, batch_size=32):
            from common.spans import Span

            return [[Span(start=t.index(w), end=t.index(w) + len(w), text=w, score=0.9)
                     for w in ("Tesla", "Duo", "Rivian") if w in t] for t in texts]

    predict_file(Fixed(), inp, tmp_path / "out.jsonl", aliases=str(path))
    out = json.loads((tmp_path / "out.jsonl").read_text())
    got = {e["text"]: (e["ticker"], e["link_score"]) for e in out["entities"]}
    assert got["Tesla"][0] == "TSLA" and got["Duo"][0] == "DUO"
    assert got["Rivian"] == (None, None)  # unknown: null, not a guess
    assert out["tickers"] == ["TSLA", "DUO"]
    predict_file(Fixed(), inp, tmp_path / "plain.jsonl")  # no table: no ticker fields
    plain = json.loads((tmp_path / "plain.jsonl").read_text())
    assert "tickers" not in plain and "ticker" not in plain["entities"][0]

    # the ner worker's stored rows (settings from the environment, as on a worker host)
    monkeypatch.setenv("TICKERTAG_ALIASES", str(path))
    monkeypatch.setenv("TICKERTAG_RESULTS_DIR", str(tmp_path / "runs"))
    get_settings.cache_clear()
    monkeypatch.setattr("workers.ner.batch.tagger_for", lambda _d, _fp=None: (Fixed(), "fixed"))
    try:
        tag_batch("link-run", "b1", [{"id": "x1", "text": text}], str(gz))
    finally:
        get_settings.cache_clear()
    (row,) = ResultStore(str(tmp_path / "runs"), "link-run").iter_results()
    assert row["tickers"] == ["TSLA", "DUO"]

    # the HTTP service, with the gazetteer (a real model directory) and the table
    port = free_port()
    p = ManagedProcess("serve", [sys.executable, "-m", "tickertag", "serve", "--model", str(gz),
                                 "--port", str(port), "--aliases", str(path)],
                       tmp_path / "serve.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(url + "/readyz", timeout=2).status_code == 200, 120,
                   "serve", p)
        r = httpx.post(url + "/v1/ner", json={"texts": [text]}, timeout=10).json()
    finally:
        p.stop()
    # what the service answers is what the same model and table give in process
    predict_file(load_tagger(gz), inp, tmp_path / "gz.jsonl", aliases=str(path))
    local = json.loads((tmp_path / "gz.jsonl").read_text())
    assert any(e["ticker"] for e in local["entities"])  # the check has a link to compare
    assert [(e["start"], e["end"], e["text"], e["ticker"]) for e in r["entities"][0]] == [
        (e["start"], e["end"], e["text"], e["ticker"]) for e in local["entities"]]
    assert r["tickers"] == [local["tickers"]]
    assert load_tagger(gz).kind == "gazetteer"
