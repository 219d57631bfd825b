"""CLI for entity linking: ``tickertag aliases build | show | evaluate``.
A thin shell: the work is in ``linking/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tickertag.cli_common import fail

console = Console()

aliases_app = typer.Typer(name="aliases", no_args_is_help=True,
                          help="The alias table that links company spans to tickers.\n\n"
                               "Build it from the corpus, inspect a name, evaluate it on "
                               "held-out gold.")

TableOpt = Annotated[str, typer.Option("--table", help="Alias table JSON (from `aliases build`).")]


def _load(table: str, overrides: str | None = None) -> Any:
    from linking.table import AliasTable

    try:
        return AliasTable.load(table, overrides)
    except (FileNotFoundError, ValueError) as e:
        raise fail("aliases", e) from e


@aliases_app.command()
def build(
    input_file: Annotated[list[str] | None, typer.Option(
        "--input", help="Labelled JSONL (repeatable; default: gold, LLM and LLM-extra train "
                        "files, then the silver set if it exists). Test titles are dropped; "
                        "a test file is refused.")] = None,
    output: Annotated[str, typer.Option(help="Where to write the table.")] = "models/aliases.json",
    overrides: Annotated[str | None, typer.Option(
        help="Overrides file (JSON/TOML: name -> ticker, or null to unlink); its path is "
             "recorded and it is re-read on every load.")] = None,
    min_score: Annotated[float | None, typer.Option(
        help="Confidence a name needs to be linked (default 0.5).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Learn name -> ticker evidence from headlines.

    From explicit tickers and stock pages."""
    from linking.build import build_table
    from linking.table import MIN_SCORE

    try:
        table = build_table(input_file or None, overrides=overrides,
                            min_score=MIN_SCORE if min_score is None else min_score)
    except (FileNotFoundError, ValueError) as e:
        raise fail("aliases build", e) from e
    path = table.save(output)
    linked = table.linked_names()
    res = {"output": str(path), "version": table.to_json()["version"],
           "built_at": table.built_at, "entries": len(table.entries), "linked_names": linked,
           "tickers": len(table.tickers), "overrides": len(table.overrides),
           "sources": table.sources}
    if as_json:
        print(json.dumps(res))
        return
    t = Table(title=f"alias table -> {path}")
    for col in ("input", "rows", "used", "test titles dropped", "duplicates"):
        t.add_column(col, justify="left" if col == "input" else "right")
    for s in table.sources:
        t.add_row(s["path"], str(s["rows"]), str(s["used"]), str(s["protected"]),
                  str(s["duplicates"]))
    console.print(t)
    console.print(f"{len(table.entries)} names ({linked} linked at confidence >= "
                  f"{table.min_score}), {len(table.tickers)} known tickers, "
                  f"{len(table.overrides)} overrides")


@aliases_app.command()
def show(
    name: Annotated[str, typer.Argument(help="A company name or ticker as written.")],
    table: TableOpt = "models/aliases.json",
    overrides: Annotated[str | None, typer.Option(help="Overrides file to apply instead of "
                                                  "the one recorded in the table.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the entry as JSON.")] = False,
) -> None:
    """Show what the table knows about a name.

    Its link, candidate tickers, counts, examples."""
    from linking.keys import name_key, norm_ticker

    tab = _load(table, overrides)
    key = name_key(name)
    entry = tab.entries.get(key)
    ticker, score = tab.link_name(name)
    as_ticker = norm_ticker(name)
    res: dict[str, Any] = {
        "name": name, "key": key, "ticker": ticker, "score": score,
        "override": key in tab.overrides, "entry": entry.to_json() if entry else None,
        "held": tab.held.get(key),
        "anchors": sorted(tab.anchors.get(tab.held[key], ())) if key in tab.held else [],
        "known_ticker": as_ticker in tab.tickers,
        "names_for_ticker": [{"key": k, "confidence": round(c, 4)}
                             for k, c in tab.names_for(as_ticker)]
        if as_ticker in tab.tickers else [],
    }
    if as_json:
        print(json.dumps(res, ensure_ascii=False))
        return
    how = " (override)" if res["override"] else ""
    console.print(f"[bold]{name}[/] (key {key!r}) -> [bold]{ticker or 'no ticker'}[/]"
                  f"{'' if score is None else f' score {score}'}{how}")
    if res["held"] and not res["override"]:
        console.print(f"not linked to {res['held']}: co-occurrence evidence only (no headline "
                      f"writes it before its ticker), and it resembles none of {res['held']}'s "
                      f"names ({', '.join(res['anchors'])})")
    if entry:
        d = entry.to_json()
        console.print("written as: " + ", ".join(f"{n} ({c})" for n, c in d["names"].items()))
        t = Table()
        for col in ("ticker", "confidence", "adjacent", "listed", "symbol", "weight"):
            t.add_column(col, justify="left" if col == "ticker" else "right")
        for tk, conf in entry.ranked()[:15]:
            ev = entry.tickers[tk]
            t.add_row(tk, f"{conf:.3f}", str(ev.adjacent), str(ev.listed), str(ev.symbol),
                      f"{ev.weight:.2f}")
        console.print(t)
        for tk, _ in entry.ranked()[:3]:
            for ex in entry.tickers[tk].examples:
                console.print(f"  {tk}: {ex}")
    elif not res["known_ticker"] and not res["override"]:
        console.print("not in the table")
    if res["known_ticker"]:
        console.print(f"{as_ticker} is a known ticker (seen in {tab.tickers[as_ticker]} "
                      "headlines); names whose best link it is: "
                      + (", ".join(n["key"] for n in res["names_for_ticker"]) or "none"))


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


@aliases_app.command()
def evaluate(
    table: TableOpt = "models/aliases.json",
    test: Annotated[list[str] | None, typer.Option(
        help="Gold JSONL (repeatable; default benzinga_gold_test + test2).")] = None,
    reviewed: Annotated[str | None, typer.Option(
        help="Hand-checked links (default data/labeled/benzinga_links_reviewed.jsonl).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
) -> None:
    """Score the table on held-out gold spans.

    Stock-symbol hit rate, coverage, and precision
    on the hand-checked sample (definitions: ``linking.evaluate.evaluate_table``)."""
    from linking.evaluate import evaluate_table
    from linking.files import REVIEWED

    tab = _load(table)
    rev = reviewed or str(REVIEWED)
    if reviewed and not Path(reviewed).exists():
        raise fail("aliases evaluate", f"{reviewed} not found")
    try:
        res = evaluate_table(tab, test or None, rev)
    except (FileNotFoundError, ValueError) as e:
        raise fail("aliases evaluate", e) from e
    if as_json:
        print(json.dumps(res, ensure_ascii=False))
        return
    t = Table(title="alias table on held-out gold spans")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_column("of", justify="right")
    t.add_row("hit rate (stock_symbol linked | table knows a span names it)",
              _fmt(res["hit_rate"]), f"{res['hits']}/{res['eligible']}")
    t.add_row("stock_symbol among the headline's tickers", _fmt(res["symbol_in_linked"]),
              f"{res['headlines_with_spans']} headlines")
    t.add_row("coverage (gold spans with a ticker)", _fmt(res["coverage"]),
              f"{res['linked_spans']}/{res['spans']}")
    r = res.get("reviewed")
    if r:
        t.add_row("reviewed: precision", _fmt(r["precision"]), f"{r['correct']}/{r['links_made']}")
        t.add_row("reviewed: recall (records with a ticker)", _fmt(r["recall"]),
                  f"{r['correct']}/{r['records'] - r['null_records']}")
        t.add_row("reviewed: coverage (records linked)", _fmt(r["coverage"]),
                  f"{r['links_made']}/{r['records']}")
        t.add_row("reviewed: null records left unlinked", _fmt(r["null_kept"]),
                  str(r["null_records"]))
    console.print(t)
    if r and r["wrong"]:
        console.print("wrong links on the reviewed sample:")
        for w in r["wrong"]:
            console.print(f"  {w['span']!r} -> {w['linked']} (checked: {w['checked']}): "
                          f"{w['text'][:90]}")


def register(app: typer.Typer) -> None:
    app.add_typer(aliases_app)
