"""The README's result figures equal the result files the commands wrote: a figure a user reads
must be the one a command produced, never a number typed by hand and left behind when the run
changed. Each table here names its source file; a figure that drifts fails."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CASCADE_JSON = ROOT / "benchmarks" / "cascade.json"
REPORT_JSON = ROOT / "training" / "report" / "report.json"
BATCH_API_JSON = ROOT / "benchmarks" / "batch_api.json"
UNION = "benzinga_gold_test+benzinga_gold_test2"
TEST, TEST2 = "benzinga_gold_test.jsonl", "benzinga_gold_test2.jsonl"


def _table_after(text: str, heading: str) -> list[list[str]]:
    """Rows (cells stripped of `**` and backticks) of the first Markdown table under a heading."""
    section = text.split(heading, 1)[1]
    rows = []
    for line in section.splitlines():
        if line.startswith("|"):
            if set(line) <= set("|-: "):
                continue
            rows.append([c.strip().replace("**", "").replace("`", "") for c in line.strip("|").split("|")])
        elif rows:
            break
    return rows[1:]  # the header row is not a figure


def _f1(x: float) -> str:
    return f"{x:.3f}"


def _ci(scores: dict[str, Any]) -> str:
    lo, hi = scores["f1_ci95"]
    return f"{_f1(scores['f1'])} [{lo:.3f}, {hi:.3f}]"


def _points(delta: float) -> str:
    return f"{delta * 100:+.1f}"


def _paired(scores: dict[str, Any]) -> str:
    p = scores["paired"]
    lo, hi = p["delta_ci95"]
    return f"{_points(p['delta'])} [{_points(lo)}, {_points(hi)}]"


def cascade_rows_expected(result: dict[str, Any]) -> list[list[str]]:
    """The cascade table as `benchmarks/cascade.py` measured it: valid, test, test2, union with
    its CI and, for all but the baseline, the paired difference against the distil student."""
    out = []
    for system in result["systems"]:
        row = [f"{system['valid_f1']:.4f}", _f1(system[TEST]["f1"]), _f1(system[TEST2]["f1"]),
               _ci(system[UNION])]
        row.append("" if "baseline" in system["system"] else _paired(system[UNION]))
        out.append(row)
    return out


def check_cascade(text: str, result: dict[str, Any]) -> list[str]:
    """Mismatches between the README's cascade table and the result file, one line each."""
    rows = _table_after(text, "## The cascade")
    expected = cascade_rows_expected(result)
    if len(rows) != len(expected):
        return [f"cascade table has {len(rows)} rows, {CASCADE_JSON.name} {len(expected)} systems"]
    return [f"{row[0]}: README {row[1:]} != {want}" for row, want in zip(rows, expected, strict=True)
            if row[1:] != want]


def test_the_cascade_table_equals_its_result_file():
    problems = check_cascade(README.read_text(), json.loads(CASCADE_JSON.read_text()))
    assert problems == []


def test_the_cascade_round_figures_equal_the_result_file():
    text = README.read_text().split("## The cascade", 1)[1].split("\n## ", 1)[0]
    r = json.loads(CASCADE_JSON.read_text())["rounds"][0]
    llm = r["llm"]
    assert f"{llm['escalated']:,} requests for {llm['pool_headlines']:,} pool headlines" in text
    assert f"({llm['escalated'] / llm['pool_headlines']:.1%})" in text
    assert f"{llm['answered']:,} answered ({llm['answered'] / llm['pool_headlines']:.1%} of the pool)" in text
    assert f"${llm['llm_cost_usd']:.3f}" in text and f"${llm['whole_pool_cost_usd']:.2f}" in text
    assert f"{r['people']['sent']:,} headlines went to people" in text
    covered = f"contested {llm['contested']:,} headlines of which the\nrecording covers {llm['answered']:,}"
    assert covered in text


def test_the_served_student_row_equals_the_report():
    rows = {r[0]: r for r in _table_after(README.read_text(), "## What it achieves")}
    student = next(s for s in json.loads(REPORT_JSON.read_text())["systems"]
                   if s["model"] == "models/student")
    figure = rows["served student, F1 on test+test2"][1]
    by_file = student["f1_by_file"]
    assert figure.startswith(f"{_ci(student)} (test {by_file[TEST]['f1']:.3f}, "
                             f"test2 {by_file[TEST2]['f1']:.3f}"), figure


@pytest.mark.parametrize("old, new", [("0.940 [0.923, 0.954]", "0.941 [0.923, 0.954]"),
                                      ("| **0.9452** |", "| **0.9453** |"),
                                      ("-1.7 [-3.2, -0.2] |\n", "-1.6 [-3.2, -0.2] |\n")])
def test_a_drifted_cascade_figure_is_caught(old: str, new: str):
    text = README.read_text()
    assert old in text
    drifted = re.sub(re.escape(old), new, text, count=1)
    assert check_cascade(drifted, json.loads(CASCADE_JSON.read_text())) != []


def test_the_batch_api_table_equals_its_result_file():
    """``benchmarks/batch_api.py`` wrote the online and batch rows and their date and commit."""
    r = json.loads(BATCH_API_JSON.read_text())
    online, batch = r["rows"]
    text = README.read_text()
    rows = {row[0].split(" ")[0]: row for row in _table_after(
        text, "### Half the token price: the provider's Batch API")}
    assert rows["online"][1:] == [f"{online['per_s']:.1f}", f"{online['usd_per_million']:.2f}"]
    assert rows["batch"][1:] == [
        f"{batch['per_s']:.1f} ({batch['per_s'] / online['per_s']:.2f}x)",
        f"{batch['usd_per_million']:.2f} "
        f"({batch['usd_per_million'] / online['usd_per_million']:.2f}x)"]
    assert f"({r['date']}, {r['commit']}; `{r['command']}`" in text


# The dated record each "What it achieves" row was copied from (the served student's row is
# checked against report.json above, the cost row is recomputed from the speed rows below).
ACHIEVEMENT_SOURCES = {
    "its two GLiNER teachers voting": "training/RESULTS.md",
    "spaCy NER trained on gold only (no teachers)": "training/RESULTS.md",
    "student - spaCy on gold": "training/RESULTS.md",
    "student bulk speed, 2 procs x 1 thread, batch 256": "training/RESULTS.md",
    "student over HTTP, one headline per request": "training/RESULTS.md",
    "linking names to tickers": "docs/linking.md",
    "annotation at scale": "benchmarks/RESULTS_soak.md",
    "across hosts": "benchmarks/RESULTS_multihost.md",
}
CHECKED_ELSEWHERE = {"served student, F1 on test+test2", "cost per million headlines"}
NUMBER = re.compile(r"[+-]?\d[\d,]*(?:\.\d+)?%?")


def untraced_figures(text: str) -> list[str]:
    """Figures of the "What it achieves" table missing from the result file of their row (a
    figure: a number with a decimal point or at least three characters)."""
    out = []
    for row in _table_after(text, "## What it achieves"):
        if row[0] in CHECKED_ELSEWHERE:
            continue
        source = ACHIEVEMENT_SOURCES.get(row[0])
        if source is None:
            out.append(f"{row[0]!r}: no result file named for this row")
            continue
        body = (ROOT / source).read_text()
        for n in (m.strip(",") for m in NUMBER.findall(row[1])):
            if (len(n.lstrip("+-")) >= 3 or "." in n) and n not in body:
                out.append(f"{row[0]!r}: {n} is not in {source}")
    return out


def test_every_achievement_figure_is_in_its_result_file():
    assert untraced_figures(README.read_text()) == []


def test_the_cost_row_follows_from_the_speeds():
    rows = {r[0]: r[1] for r in _table_after(README.read_text(), "## What it achieves")}
    cost = rows["cost per million headlines"]
    rate = float(re.search(r"([\d,]+) headlines/s", rows[
        "student bulk speed, 2 procs x 1 thread, batch 256"]).group(1).replace(",", ""))
    price = float(re.search(r"at \$([\d.]+)/h \(", cost).group(1))
    assert f"student ${price / (rate * 3600) * 1e6:.3f}" in cost
    llm_rate = float(re.search(r"\((\d+) headlines/s\)", cost).group(1))
    llm_price = float(re.search(r"~\$\d+ at \$([\d.]+)/h", cost).group(1))
    assert f"~${llm_price / (llm_rate * 3600) * 1e6:.0f} at" in cost


def test_an_untraced_achievement_figure_is_caught():
    text = README.read_text()
    assert "**2,798 headlines/s**" in text
    assert untraced_figures(text.replace("**2,798 headlines/s**", "**2,897 headlines/s**"))
    assert untraced_figures(text.replace("| across hosts |", "| across many hosts |"))
