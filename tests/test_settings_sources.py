import json

import pyarrow as pa
import pyarrow.parquet as pq

from common.settings import Settings
from common.store import ResultStore
from producer.sources import is_benzinga, iter_source, normalise_row


def test_settings_env_over_toml_over_defaults(tmp_path, monkeypatch):
    cfg = tmp_path / "tt.toml"
    cfg.write_text('llm_model = "from-toml"\nbatch_size = 7\nhf_token = "hf_from_toml"\n')
    monkeypatch.setenv("TICKERTAG_CONFIG", str(cfg))
    monkeypatch.setenv("TICKERTAG_BATCH_SIZE", "9")
    s = Settings()
    assert s.llm_model == "from-toml" and s.batch_size == 9 and s.concurrency == 32
    assert s.hf_token.get_secret_value() == "hf_from_toml" and "hf_from_toml" not in repr(s)
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    assert Settings().hf_token.get_secret_value() == "hf_env"


def test_fnspid_rows_map_and_benzinga_filter():
    row = {"Date": "2020-06-04 00:00:00 UTC", "Article_title": "Mizuho Maintains Buy on Autodesk",
           "Stock_symbol": "ADSK", "Url": "https://www.benzinga.com/news/20/06/x", "Publisher": ""}
    assert is_benzinga(row) and not is_benzinga({"Url": "https://www.nasdaq.com/articles/x"})
    assert normalise_row(row) == {"title": "Mizuho Maintains Buy on Autodesk",
                                  "date": "2020-06-04 00:00:00 UTC", "stock_symbol": "ADSK"}


def test_local_jsonl_and_parquet_sources(tmp_path):
    rows = [{"headline": "Apple Beats", "date": "2020-01-01", "ticker": "AAPL"},
            {"headline": "Tesla Misses", "date": "2020-01-02", "ticker": "TSLA"}]
    jl = tmp_path / "h.jsonl"
    jl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "h.parquet")
    for path in (jl, tmp_path / "h.parquet"):
        got = list(iter_source(str(path)))
        assert [g["title"] for g in got] == ["Apple Beats", "Tesla Misses"]
        assert got[1]["stock_symbol"] == "TSLA"
    assert len(list(iter_source(str(jl), limit=1))) == 1


def test_export_merges_shards_into_a_datasets_file(tmp_path):
    from datasets import load_dataset

    store = ResultStore(str(tmp_path), "r1")
    rec = {"key": "a:m:p", "id": "a", "text": "Apple Beats", "entities": [
        {"start": 0, "end": 5, "label": "Company", "text": "Apple"}]}
    store.write_results("b1", [rec])
    store.write_results("b2", [rec, {**rec, "key": "b:m:p", "id": "b", "text": "No company",
                                     "entities": []}])  # a redelivered duplicate of "a"
    for ext in ("jsonl", "parquet"):
        out = tmp_path / f"all.{ext}"
        assert store.export(str(out)) == 2
        ds = load_dataset("json" if ext == "jsonl" else "parquet", data_files=str(out),
                          split="train")
        assert sorted(ds["id"]) == ["a", "b"] and ds[0]["entities"][0]["text"] == "Apple"


def test_config_show_masks_secrets(monkeypatch):
    import json

    from typer.testing import CliRunner

    from common.settings import get_settings
    from tickertag.cli import _register_all, app

    if not app.registered_commands:
        _register_all()
    monkeypatch.setenv("TICKERTAG_HF_TOKEN", "hf_canary_show_1")
    monkeypatch.setenv("TICKERTAG_BATCH_SIZE", "17")
    get_settings.cache_clear()
    try:
        r = CliRunner().invoke(app, ["config", "show", "--json"])
        table = CliRunner().invoke(app, ["config", "show"])
    finally:
        get_settings.cache_clear()
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["batch_size"] == 17 and d["hf_token"] == "********"
    assert "hf_canary_show_1" not in r.output + table.output
    assert "TICKERTAG_BATCH_SIZE" in table.output
