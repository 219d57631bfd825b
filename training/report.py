"""``tickertag report``: one Markdown (and HTML) page with PNG plots comparing every system on
the same test split — F1 with 95% CIs, headlines/s measured here, $ per million headlines at
configurable instance prices — and the weak-supervision learning curve when one was run.

Over 300 lines: every table reads one model (systems x test files, with CIs) and is a short
function of it; the plots of the same model are ``training.report_plots``.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.metrics import score
from common.progress import Tick, no_tick
from training.data import read_jsonl, spans_of
from training.inference import load_tagger
from training.report_plots import write_plots

PRICES = {"cpu": 0.10, "gpu": 0.50, "llm": 8.0}  # $/h: the case study's figures


def _scores(test_sets: dict[str, list[dict]], pred_by_text: dict[str, list]) -> dict[str, Any]:
    """Union F1 (with CI) over every test headline that has a prediction, and F1 per file."""
    union_g, union_p, by_file = [], [], {}
    for name, rows in test_sets.items():
        have = [r for r in rows if r["text"] in pred_by_text]
        if not have:
            continue
        g, p = [spans_of(r) for r in have], [pred_by_text[r["text"]] for r in have]
        by_file[name] = {"f1": round(score(g, p).f1, 4), "n_docs": len(have)}
        union_g += g
        union_p += p
    sc = score(union_g, union_p, bootstrap=1000)
    return {**sc.as_dict(), "f1_by_file": by_file}


def measure_system(name: str, model_dir: str, test_sets: dict[str, list[dict]],
                   price_per_hour: float, batch_size: int = 32, repeat_to: int = 1000,
                   tick: Tick = no_tick) -> tuple[dict[str, Any], dict[str, list]]:
    """A model directory's scores on every test file and its in-process headlines/s; also
    returns its predictions by text (for paired comparisons). ``tick("load NAME", 0, None)``
    while the model loads (seconds for a GLiNER: a spinner, not a frozen bar)."""
    tick(f"load {name}", 0, None)
    tagger = load_tagger(model_dir)
    tick(f"load {name}", 1, 1)
    texts = list(dict.fromkeys(r["text"] for rows in test_sets.values() for r in rows))
    pred = dict(zip(texts, tagger.predict(texts, None, batch_size), strict=True))
    hps = None
    if repeat_to:
        bench = (texts * (repeat_to // max(1, len(texts)) + 1))[:repeat_to]
        tagger.predict(bench[:batch_size], None, batch_size)  # warm up
        t0 = time.perf_counter()
        tagger.predict(bench, None, batch_size)
        hps = len(bench) / (time.perf_counter() - t0)
    return ({"system": name, "model": _shown_path(model_dir), **_scores(test_sets, pred),
             "headlines_per_s": hps, "price_per_hour": price_per_hour,
             "usd_per_million": price_per_hour / (hps * 3600) * 1e6 if hps else None}, pred)


def _shown_path(p: str) -> str:
    """A path as the report shows it: relative to the working directory when inside it (no
    absolute paths of the machine that wrote the report)."""
    try:
        return str(Path(p).resolve().relative_to(Path.cwd()))
    except ValueError:
        return Path(p).name


def reference_row(name: str, pred_path: str, test_sets: dict[str, list[dict]],
                  headlines_per_s: float | None, price_per_hour: float
                  ) -> tuple[dict[str, Any], dict[str, list]]:
    """A system known only by its predictions (e.g. the LLM): scored on the test headlines it
    has predictions for (the LLM pass covers test, not test2; ``f1_by_file`` says which)."""
    pred = {r["text"]: spans_of(r) for r in read_jsonl(pred_path)}
    return ({"system": name, "model": _shown_path(pred_path), **_scores(test_sets, pred),
             "headlines_per_s": headlines_per_s, "price_per_hour": price_per_hour,
             "usd_per_million": (price_per_hour / (headlines_per_s * 3600) * 1e6
                                 if headlines_per_s else None)}, pred)


def paired_rows(pairs: list[tuple[str, str]], preds: dict[str, dict[str, list]],
                test_sets: dict[str, list[dict]]) -> list[dict[str, Any]]:
    """Paired bootstrap of F1(a) - F1(b) on the test headlines both systems predicted."""
    from common.metrics import paired_bootstrap

    out = []
    rows = [r for rs in test_sets.values() for r in rs]
    for a, b in pairs:
        if a not in preds or b not in preds:
            raise ValueError(f"--pair {a}:{b}: both must be systems of this report "
                             f"(have {sorted(preds)})")
        both = [r for r in rows if r["text"] in preds[a] and r["text"] in preds[b]]
        d = paired_bootstrap([spans_of(r) for r in both], [preds[a][r["text"]] for r in both],
                             [preds[b][r["text"]] for r in both])
        out.append({"a": a, "b": b, **d.as_dict()})
    return out


def _f1_cell(r: dict, name: str) -> str:
    f = (r.get("f1_by_file") or {}).get(name)
    return f"{f['f1']:.3f}" if f else "n/a"


@dataclass
class Section:
    """One table of the report: what both report.md and the terminal (``tickertag report``)
    show, so the two never say different things. ``right``: the columns aligned right."""

    title: str | None
    intro: str | None
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    right: set[int] = field(default_factory=set)

    def markdown(self) -> list[str]:
        out = [f"\n## {self.title}\n"] if self.title else []
        if self.intro:
            out.append(self.intro + "\n")
        out += ["| " + " | ".join(self.header) + " |",
                "|" + "".join("---:|" if i in self.right else "---|"
                              for i in range(len(self.header)))]
        return out + ["| " + " | ".join(r) + " |" for r in self.rows]


def sections(rows: list[dict], files: list[str], curve: list[dict] | None = None,
             pairs: list[dict] | None = None, silver: list[dict] | None = None,
             linking: dict | None = None) -> list[Section]:
    """The report's tables, in order: systems, paired comparisons, silver curve, linking,
    learning curve (each only when there is something to show)."""
    n = len(files)
    systems = Section(None, None, ["system", "P", "R", "F1", "F1 95% CI",
                                   *(f"F1 {f}" for f in files), "headlines/s", "$/h",
                                   "$ per million"],
                      right={1, 2, 3, *range(5, 8 + n)})
    for r in rows:
        lo, hi = r["f1_ci95"]
        hps = f"{r['headlines_per_s']:.1f}" if r.get("headlines_per_s") else "n/a"
        usd = f"{r['usd_per_million']:.2f}" if r.get("usd_per_million") else "n/a"
        systems.rows.append([r["system"], f"{r['precision']:.3f}", f"{r['recall']:.3f}",
                             f"{r['f1']:.3f}", f"[{lo:.3f}, {hi:.3f}]",
                             *(_f1_cell(r, f) for f in files), hps,
                             f"{r['price_per_hour']:.2f}", usd])
    out = [systems]
    if pairs:
        s = Section("Paired comparisons",
                    "Both systems on the same headlines, resampled together (1,000 resamples): "
                    "a difference whose CI includes 0 is not a difference.",
                    ["A", "B", "F1 A", "F1 B", "A - B", "95% CI", "P(A not better)",
                     "headlines"], right={2, 3, 4, 6, 7})
        for d in pairs:
            lo, hi = d["delta_ci95"]
            s.rows.append([d["a"], d["b"], f"{d['f1_a']:.3f}", f"{d['f1_b']:.3f}",
                           f"{d['delta']:+.3f}", f"[{lo:+.3f}, {hi:+.3f}]",
                           f"{d['p_not_better']:.3f}", str(d["n_docs"])])
        out.append(s)
    if silver:
        s = Section("Student F1 against silver-set size", None,
                    ["student", "silver headlines", "F1", "F1 95% CI"], right={1, 2})
        for r in silver:
            lo, hi = r["f1_ci95"]
            s.rows.append([r["system"], str(r["silver_headlines"]), f"{r['f1']:.3f}",
                           f"[{lo:.3f}, {hi:.3f}]"])
        out.append(s)
    if linking:
        rv = linking.get("reviewed") or {}
        s = Section("Linking names to tickers (alias table, gold spans of the test files)", None,
                    ["measure", "value", "of"], right={1, 2})
        s.rows += [["the headline's own stock linked, where a span names it",
                    f"{linking['hit_rate']:.3f}", f"{linking['hits']}/{linking['eligible']}"],
                   ["stock symbol among the headline's linked tickers",
                    f"{linking['symbol_in_linked']:.3f}", str(linking["headlines_with_spans"])],
                   ["spans with a ticker (coverage)", f"{linking['coverage']:.3f}",
                    f"{linking['linked_spans']}/{linking['spans']}"]]
        if rv:
            s.rows.append(["precision on hand-checked links", f"{rv['precision']:.3f}",
                           f"{rv['correct']}/{rv['links_made']}"])
        out.append(s)
    if curve:
        from training.learning_curve import summarise

        s = Section("Learning curve (GLiNER, reviewed vs LLM labels)", None,
                    ["labels", "headlines", "mean test F1", "std", "runs", "trained on"],
                    right={1, 2, 3, 4})
        for c in summarise(curve):
            s.rows.append([c["source"], str(c["n"]), f"{c['mean']:.3f}", f"{c['std']:.3f}",
                           str(c["runs"]), str(c["devices"])])
        out.append(s)
    return out


def write_report(rows: list[dict], out_dir: str, test_paths: list[str],
                 curve: list[dict] | None = None, pairs: list[dict] | None = None,
                 silver: list[dict] | None = None, notes: list[str] | None = None,
                 linking: dict | None = None) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(rows, curve, silver, out)
    files = [Path(t).name for t in test_paths]
    systems, *rest = sections(rows, files, curve, pairs, silver, linking)
    lines = ["# tickertag report\n",
             f"Test files: {', '.join(f'`{f}`' for f in files)}. Entity-level micro P/R/F1 on "
             "exact character spans (`common/metrics.py`); F1, P and R are on all test "
             "headlines together, with a 95% bootstrap CI over headlines. Headlines/s of model "
             "directories were measured in this run, in one process on this machine.\n",
             *systems.markdown()]
    lines += [""] + [f"- {n}" for n in notes or []]
    for s in rest:
        lines += s.markdown()
    lines += [""] + [f"![{p}]({p})" for p in plots]
    md = "\n".join(lines) + "\n"
    (out / "report.md").write_text(md)
    (out / "report.json").write_text(json.dumps({"systems": rows, "curve": curve, "pairs": pairs,
                                                 "silver_curve": silver, "linking": linking,
                                                 "test": files, "notes": notes or []},
                                                indent=2, default=str))
    (out / "report.html").write_text(_html(md), encoding="utf-8")
    return out / "report.md"


def _html(md: str) -> str:
    """The report's Markdown as a standalone page, rendered by markdown-it (CommonMark plus
    pipe tables). Raw HTML in the Markdown is escaped, not passed through (a system name or a
    note is text); images keep their relative paths, so the page shows the PNGs beside it."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(md)
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:.2em .6em}th{background:#f4f4f4}"
             "img{max-width:100%}code{font-size:90%}")
    return ("<!doctype html>\n<html><head><meta charset=\"utf-8\">"
            "<title>tickertag report</title>"
            f"<style>{style}</style></head>\n<body>\n{body}</body></html>\n")


def build_report(systems: dict[str, str], test_path: str | list[str], out_dir: str,
                 llm_pred: str | None = None, llm_headlines_per_s: float | None = None,
                 curve_json: str | list[str] | None = None, prices: dict | None = None,
                 reuse: str | None = None, pairs: list[tuple[str, str]] | None = None,
                 silver_curve: dict[str, str] | None = None, linking: dict | None = None,
                 progress: Tick | None = None) -> Path:
    """``test_path``: one or several test files (scored each and together). ``curve_json``: one
    or several ``learning_curve.json`` files (e.g. one per seed run on different hosts); their
    runs are pooled. ``reuse``: an earlier ``report.json`` whose system rows are kept as
    measured then (a system named again in ``systems`` is measured anew), and its silver curve
    unless ``silver_curve`` is given. ``pairs``: (A, B)
    system names for a paired bootstrap. ``silver_curve``: name -> student directory trained by
    ``tickertag distil --max-silver N`` (its manifest says N). ``linking``: an alias table's
    figures on the same test files (``linking.evaluate.report_figures``). ``progress(what, done, total)``
    is called before and after each system (and each silver-curve student) is measured."""
    from training.inference import read_manifest

    prices = {**PRICES, **(prices or {})}
    paths = [test_path] if isinstance(test_path, str) else list(test_path)
    test_sets = {Path(p).name: read_jsonl(p) for p in paths}
    rows: list[dict[str, Any]] = []
    preds: dict[str, dict[str, list]] = {}
    reused: dict[str, Any] = json.loads(Path(reuse).read_text()) if reuse else {}
    rows = [r for r in reused.get("systems", [])
            if r["system"] not in systems and not (llm_pred and r["system"] == "LLM labels")]
    tick = progress or no_tick
    if systems:
        tick("systems", 0, len(systems))
    for i, (name, d) in enumerate(systems.items(), 1):
        row, preds[name] = measure_system(name, d, test_sets, prices["cpu"], tick=tick)
        rows.append(row)
        tick("systems", i, len(systems))
        print(f"[tickertag] {name}: F1 {row['f1']:.4f}, {row['headlines_per_s'] or 0:.1f} "
              "headlines/s", file=sys.stderr, flush=True)  # stdout: --json's
    notes = []
    if llm_pred:
        row, preds["LLM labels"] = reference_row("LLM labels", llm_pred, test_sets,
                                                 llm_headlines_per_s, prices["llm"])
        rows.append(row)
        notes.append("LLM labels: one strong-LLM pass; the gold files were adjudicated from "
                     "LLM passes, so this row is optimistic. Scored on the test headlines it "
                     f"covers ({row['n_docs']}); its headlines/s"
                     + (f" ({llm_headlines_per_s}) is the case study's figure for Llama 3.1 70B "
                        "on a dedicated endpoint, not measured here." if llm_headlines_per_s
                        else " is unknown."))
    silver = []
    students = silver_curve or {}
    if students:
        tick("silver students", 0, len(students))
    for i, (name, d) in enumerate(students.items(), 1):
        row, _ = measure_system(name, d, test_sets, prices["cpu"], repeat_to=0, tick=tick)
        silver.append({**row, "silver_headlines":
                       (read_manifest(d).get("distil") or {}).get("silver_headlines", 0)})
        tick("silver students", i, len(students))
    if not students:  # a silver curve takes hours to retrain: keep the reused report's
        silver = list(reused.get("silver_curve") or [])
    silver.sort(key=lambda r: r["silver_headlines"])
    curve_paths = [curve_json] if isinstance(curve_json, str) else list(curve_json or [])
    curve = [run for p in curve_paths if Path(p).exists() for run in json.loads(Path(p).read_text())]
    return write_report(rows, out_dir, paths, curve or None,
                        paired_rows(pairs or [], preds, test_sets) or None, silver or None, notes,
                        linking)
