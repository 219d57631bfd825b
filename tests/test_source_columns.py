"""A source without a title column: one clear error when a CSV or Parquet file is opened, per
record for JSONL (no header), and a producer whose memory does not grow with the rejections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from common.ledger import RunLedger
from common.store import ResultStore
from producer import produce, sources
from producer.produce import MAX_REJECTED_EXAMPLES, REJECTED_FLUSH_ROWS, Producer
from producer.sources import MissingColumn, iter_source

EXPECTED = "expected one of `title`, `Article_title`, `headline`, `text`"


def _csv(path: Path, header: str, rows: int = 3) -> Path:
    path.write_text(header + "\n" + "".join(f"2020-01-0{i % 9 + 1},Apple Rises {i},AAPL\n"
                                            for i in range(rows)))
    return path


def test_a_csv_with_a_Title_column_fails_before_any_row_is_read(tmp_path, monkeypatch):
    read: list[Path] = []
    monkeypatch.setattr(sources, "_iter_csv", lambda p: read.append(p) or iter(()))
    src = _csv(tmp_path / "news.csv", "date,Title,stock_symbol")
    with pytest.raises(MissingColumn) as e:
        iter_source(str(src))  # raised on opening, not on the first next()
    assert str(e.value) == ("news.csv: no title column: found `date`, `Title`, `stock_symbol`; "
                            f"{EXPECTED}; did you mean `Title`? (rename it to `title`)")
    assert read == []


def test_no_near_match_names_what_was_found_and_nothing_more(tmp_path):
    src = _csv(tmp_path / "n.csv", "date,headline_text,ticker")
    with pytest.raises(MissingColumn) as e:
        iter_source(str(src))
    assert str(e.value) == ("n.csv: no title column: found `date`, `headline_text`, `ticker`; "
                            f"{EXPECTED}")


def test_a_parquet_schema_is_checked_the_same_way(tmp_path):
    pq.write_table(pa.Table.from_pylist([{"HEADLINE": "Apple Rises", "date": "2020-01-01"}]),
                   tmp_path / "h.parquet")
    with pytest.raises(MissingColumn) as e:
        iter_source(str(tmp_path / "h.parquet"))
    assert str(e.value).endswith("did you mean `HEADLINE`? (rename it to `headline`)")


def test_a_good_csv_still_streams(tmp_path):
    got = list(iter_source(str(_csv(tmp_path / "ok.csv", "date,title,stock_symbol", 4)),
                           limit=3))
    assert [g["title"] for g in got] == ["Apple Rises 0", "Apple Rises 1", "Apple Rises 2"]


def test_produce_command_exits_1_on_the_header(results_dir, tmp_path):
    from tickertag.cli import _register_all, app

    _register_all()
    src = _csv(tmp_path / "news.csv", "date,Title,stock_symbol")
    r = CliRunner().invoke(app, ["produce", str(src), "--run", "hdr"])
    assert r.exit_code == 1, r.output
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("produce: news.csv: no title column"), r.stderr
    assert "did you mean `Title`?" in err[0]
    assert not (results_dir / "hdr" / "rejected.jsonl").exists()


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_bad_jsonl_rows_are_all_written_but_few_are_kept(make_settings, celery_app, tmp_path,
                                                        monkeypatch):
    """5,000 records with ``Title`` (a JSONL has no header): each is rejected by number with
    its field, all go to rejected.jsonl, and the producer holds at most a flush's worth."""
    n = 5_000
    src = _jsonl(tmp_path / "bad.jsonl", [{"Title": f"Apple Rises {i}", "date": "2020-01-01"}
                                          for i in range(n)])
    chunks: list[int] = []
    write = ResultStore.write_rejected
    monkeypatch.setattr(ResultStore, "write_rejected",
                        lambda self, rows: chunks.append(len(rows)) or write(self, rows))
    s = make_settings(auto_curate=False)
    rep = Producer(celery_app, s).run(iter_source(str(src)), "bad.jsonl")
    assert (rep.rows, rep.rejected, rep.enqueued) == (n, n, 0)
    assert len(rep.rejected_examples) == MAX_REJECTED_EXAMPLES == 5
    assert max(chunks) == REJECTED_FLUSH_ROWS and sum(chunks) == n
    lines = [json.loads(x) for x in
             (Path(s.results_dir) / s.run_id / "rejected.jsonl").read_text().splitlines()]
    assert len(lines) == n and lines[-1]["record"] == f"bad.jsonl#{n}"
    assert {x["field"] for x in lines} == {"title"}
    assert lines[0]["error"] == ("missing: no title column: found `Title`, `date`; "
                                 f"{EXPECTED}; did you mean `Title`? (rename it to `title`)")
    assert lines[0]["row"] == {"date": "2020-01-01", "stock_symbol": None}
    assert rep.rejected_examples[0] == f"record bad.jsonl#1: field 'title': {lines[0]['error']}"
    assert RunLedger.from_url(s.redis_dsn(), s.run_id).stats()["rejected"] == n
    again = Producer(celery_app, s).run(iter_source(str(src)), "bad.jsonl")
    assert again.rejected == n  # reported again, written and counted once
    assert RunLedger.from_url(s.redis_dsn(), s.run_id).stats()["rejected"] == n
    assert len((Path(s.results_dir) / s.run_id / "rejected.jsonl").read_text()
               .splitlines()) == n


def test_repeats_across_batches_are_still_duplicates(make_settings, celery_app, tmp_path,
                                                    monkeypatch):
    """The producer forgets ids once their batch is sent; Redis's claim catches the repeat."""
    texts = [f"Company {i} Beats Estimates" for i in range(20)]
    src = _jsonl(tmp_path / "rep.jsonl", [{"title": t} for t in texts + texts + texts[:3]])
    s = make_settings(auto_curate=False, batch_size=8, max_batches_in_flight=100)
    sent: list[list[str]] = []
    monkeypatch.setattr(produce, "send_batch",
                        lambda app, run, bid, hs, *a: sent.append([h["text"] for h in hs]))
    rep = Producer(celery_app, s).run(iter_source(str(src)), "rep.jsonl")
    assert (rep.rows, rep.enqueued, rep.duplicates, rep.batches) == (43, 20, 23, 3)
    assert sorted(t for b in sent for t in b) == sorted(texts)
