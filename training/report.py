"""``tickertag report``: one Markdown (and HTML) page with PNG plots comparing every system on
the same test split — F1 with 95% CIs, headlines/s measured here, $ per million headlines at
configurable instance prices — and the weak-supervision learning curve when one was run."""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any

from common.metrics import score
from training.data import read_jsonl, spans_of
from training.inference import load_tagger

PRICES = {"cpu": 0.10, "gpu": 0.50, "llm": 8.0}  # $/h: the case study's figures


def measure_system(name: str, model_dir: str, test_rows: list[dict], price_per_hour: float,
                   batch_size: int = 32, repeat_to: int = 1000) -> dict[str, Any]:
    tagger = load_tagger(model_dir)
    texts = [r["text"] for r in test_rows]
    pred = tagger.predict(texts, None, batch_size)
    sc = score([spans_of(r) for r in test_rows], pred, bootstrap=1000)
    bench = (texts * (repeat_to // max(1, len(texts)) + 1))[:repeat_to]
    tagger.predict(bench[:batch_size], None, batch_size)  # warm up
    t0 = time.perf_counter()
    tagger.predict(bench, None, batch_size)
    hps = len(bench) / (time.perf_counter() - t0)
    return {"system": name, "model": model_dir, **sc.as_dict(), "headlines_per_s": hps,
            "price_per_hour": price_per_hour,
            "usd_per_million": price_per_hour / (hps * 3600) * 1e6}


def reference_row(name: str, pred_path: str, test_rows: list[dict], headlines_per_s: float | None,
                  price_per_hour: float) -> dict[str, Any]:
    """A system known only by its predictions (e.g. the LLM), aligned to the test rows."""
    from training.evaluate import align_docs

    pred = align_docs(test_rows, read_jsonl(pred_path))
    sc = score([spans_of(r) for r in test_rows], [spans_of(p) for p in pred], bootstrap=1000)
    return {"system": name, "model": pred_path, **sc.as_dict(),
            "headlines_per_s": headlines_per_s, "price_per_hour": price_per_hour,
            "usd_per_million": (price_per_hour / (headlines_per_s * 3600) * 1e6
                                if headlines_per_s else None)}


def _plots(rows: list[dict], curve: list[dict] | None, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = [r["system"] for r in rows]
    f1 = [r["f1"] for r in rows]
    err = [[r["f1"] - r["f1_ci95"][0] for r in rows], [r["f1_ci95"][1] - r["f1"] for r in rows]]
    ax.barh(names, f1, xerr=err, color="#4c78a8", capsize=3)
    ax.set_xlim(0, 1)
    ax.set_xlabel("exact-span F1 on the test split (95% bootstrap CI)")
    for i, v in enumerate(f1):
        ax.text(min(v + 0.02, 0.9), i, f"{v:.3f}", va="center")
    fig.tight_layout()
    fig.savefig(out / "f1.png", dpi=120)
    files.append("f1.png")
    plt.close(fig)
    costed = [r for r in rows if r.get("usd_per_million")]
    if costed:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.barh([r["system"] for r in costed], [r["usd_per_million"] for r in costed],
                color="#f58518")
        ax.set_xscale("log")
        ax.set_xlabel("$ per million headlines (log scale)")
        fig.tight_layout()
        fig.savefig(out / "cost.png", dpi=120)
        files.append("cost.png")
        plt.close(fig)
    if curve:
        from training.learning_curve import summarise

        fig, ax = plt.subplots(figsize=(6, 3.5))
        for src, color in (("reviewed", "#4c78a8"), ("llm", "#e45756")):
            pts = [s for s in summarise(curve) if s["source"] == src]
            if pts:
                ax.errorbar([p["n"] for p in pts], [p["mean"] for p in pts],
                            yerr=[p["std"] for p in pts], marker="o", color=color, capsize=3,
                            label=f"{src} labels")
        ax.set_xscale("log")
        ax.set_xlabel("training headlines")
        ax.set_ylabel("test F1")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "learning_curve.png", dpi=120)
        files.append("learning_curve.png")
        plt.close(fig)
    return files


def write_report(rows: list[dict], out_dir: str, test_path: str,
                 curve: list[dict] | None = None) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = _plots(rows, curve, out)
    lines = [f"# tickertag report\n\nTest split: `{test_path}` ({rows[0]['n_docs']} headlines). "
             "Entity-level micro P/R/F1 on exact character spans (`common/metrics.py`), 95% "
             "bootstrap CI over headlines. Speed measured on this machine.\n",
             "| system | P | R | F1 | F1 95% CI | headlines/s | $/h | $ per million |",
             "|---|---:|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        lo, hi = r["f1_ci95"]
        hps = f"{r['headlines_per_s']:.1f}" if r.get("headlines_per_s") else "n/a"
        usd = f"{r['usd_per_million']:.2f}" if r.get("usd_per_million") else "n/a"
        lines.append(f"| {r['system']} | {r['precision']:.3f} | {r['recall']:.3f} | "
                     f"{r['f1']:.3f} | [{lo:.3f}, {hi:.3f}] | {hps} | {r['price_per_hour']:.2f} | "
                     f"{usd} |")
    if curve:
        from training.learning_curve import summarise

        lines += ["\n## Learning curve (GLiNER, reviewed vs LLM labels)\n",
                  "| labels | headlines | mean test F1 | std | runs | trained on |",
                  "|---|---:|---:|---:|---:|---|"]
        for s in summarise(curve):
            lines.append(f"| {s['source']} | {s['n']} | {s['mean']:.3f} | {s['std']:.3f} | "
                         f"{s['runs']} | {s['devices']} |")
    lines += [""] + [f"![{p}]({p})" for p in plots]
    md = "\n".join(lines) + "\n"
    (out / "report.md").write_text(md)
    (out / "report.json").write_text(json.dumps({"systems": rows, "curve": curve}, indent=2))
    (out / "report.html").write_text(_html(md))
    return out / "report.md"


def _cells(line: str) -> list[str]:
    return [html.escape(c.strip()) for c in line.strip().strip("|").split("|")]


def _html(md: str) -> str:
    """The report's Markdown (headings, pipe tables, images, paragraphs) as a standalone page:
    enough for this report without a Markdown dependency."""
    parts, table = [], []
    for line in [*md.splitlines(), ""]:
        if line.startswith("|"):
            table.append(line)
            continue
        if table:
            head, body = _cells(table[0]), [_cells(r) for r in table[2:]]
            parts.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr>" + "".join(
                "<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body) + "</table>")
            table = []
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            parts.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("!["):
            parts.append(f'<p><img src="{html.escape(line[line.index("(") + 1:-1])}"></p>')
        elif line.strip():
            parts.append(f"<p>{html.escape(line)}</p>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:"
             "collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>tickertag report</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


def build_report(systems: dict[str, str], test_path: str, out_dir: str,
                 llm_pred: str | None = None, llm_headlines_per_s: float | None = None,
                 curve_json: str | list[str] | None = None, prices: dict | None = None,
                 reuse: str | None = None) -> Path:
    """``curve_json``: one or several ``learning_curve.json`` files (e.g. one per seed run on
    different hosts); their runs are pooled. ``reuse``: an earlier ``report.json`` whose system
    rows are kept as measured then (a system named again in ``systems`` is measured anew), so a
    longer learning curve does not need every model on disk again."""
    prices = {**PRICES, **(prices or {})}
    test_rows = read_jsonl(test_path)
    rows = []
    if reuse:
        rows = [r for r in json.loads(Path(reuse).read_text())["systems"]
                if r["system"] not in systems and not (llm_pred and r["system"] == "LLM labels")]
    for name, d in systems.items():
        rows.append(measure_system(name, d, test_rows, prices["cpu"]))
        print(f"[tickertag] {name}: F1 {rows[-1]['f1']:.4f}, "
              f"{rows[-1]['headlines_per_s']:.1f} headlines/s", flush=True)
    if llm_pred:
        rows.append(reference_row("LLM labels", llm_pred, test_rows, llm_headlines_per_s,
                                  prices["llm"]))
    paths = [curve_json] if isinstance(curve_json, str) else list(curve_json or [])
    curve = [run for p in paths if Path(p).exists() for run in json.loads(Path(p).read_text())]
    return write_report(rows, out_dir, test_path, curve or None)
