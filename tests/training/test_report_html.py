"""report.html is rendered by a real Markdown renderer (markdown-it, CommonMark + tables, raw
HTML escaped); ``build_report`` reports progress per system; ``tickertag report`` prints where
report.html is, can open it, and keeps stdout to one JSON line's worth of output under --json.

Cheap: a gazetteer built from 40 labelled headlines and scored on 20 (seconds, no training)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from common.paths import LABELED_DIR
from training.report import _html, build_report


def test_html_renders_tables_headings_images_and_escapes_raw_html():
    md = ("# tickertag report\n\n"
          "Scores for <script>alert('x')</script> and `code`.\n\n"
          "| system | F1 |\n|---|---:|\n| gazetteer | 0.812 |\n| spacy ORG | 0.400 |\n\n"
          "## Plots\n\n![f1.png](f1.png)\n")
    page = _html(md)
    assert page.startswith("<!doctype html>")
    assert '<meta charset="utf-8">' in page and "<title>tickertag report</title>" in page
    assert "<style>" in page
    assert "<h1>tickertag report</h1>" in page and "<h2>Plots</h2>" in page
    table = page[page.index("<table>"):page.index("</table>")]
    assert "<th>system</th>" in table and re.search(r"<th[^>]*>F1</th>", table)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", table)
    assert cells == ["gazetteer", "0.812", "spacy ORG", "0.400"]
    assert re.search(r'<img src="f1\.png"', page)  # relative: the PNG beside report.html
    assert "<script>" not in page
    assert "&lt;script&gt;alert(" in page


def _tiny(tmp_path: Path) -> tuple[Path, Path]:
    """A gazetteer built from 40 gold train headlines, and a 20-headline test file."""
    from training.baselines import build_gazetteer

    lines = (LABELED_DIR / "benzinga_gold_train.jsonl").read_text().splitlines()
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(lines[:40]) + "\n")
    test = tmp_path / "test.jsonl"
    test.write_text("\n".join((LABELED_DIR / "benzinga_gold_test.jsonl").read_text()
                              .splitlines()[:20]) + "\n")
    build_gazetteer([str(train)], str(tmp_path / "gz"))
    return tmp_path / "gz", test


def test_build_report_calls_progress_per_system(tmp_path: Path):
    gz, test = _tiny(tmp_path)
    calls: list[tuple] = []
    md = build_report({"gz a": str(gz), "gz b": str(gz)}, str(test), str(tmp_path / "rep"),
                      silver_curve={"student": str(gz)},
                      progress=lambda *a: calls.append(a))
    assert [c for c in calls if c[0] == "systems"] == [("systems", 0, 2), ("systems", 1, 2),
                                                       ("systems", 2, 2)]
    assert [c for c in calls if c[0] == "silver students"] == [("silver students", 0, 1),
                                                               ("silver students", 1, 1)]
    page = (md.parent / "report.html").read_text(encoding="utf-8")
    assert "<td>gz a</td>" in page and re.search(r'<img src="f1\.png"', page)


def _invoke(*args: str):
    from tickertag.cli import _register_all, app

    if not app.registered_commands:
        _register_all()
    return CliRunner().invoke(app, list(args))


def test_report_cli_prints_the_page_path_and_opens_it(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch):
    import webbrowser

    gz, test = _tiny(tmp_path)
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **kw: opened.append(url) or True)
    out = tmp_path / "rep"
    r = _invoke("report", "--system", f"gz={gz}", "--test", str(test), "--out", str(out),
                "--open")
    assert r.exit_code == 0, r.output
    page = (out / "report.html").resolve()
    assert f"report.html: {page}" in r.stdout
    assert opened == [page.as_uri()]

    # --json: no bars; the last line of stdout is the report as one JSON object
    r = _invoke("report", "--system", f"gz={gz}", "--test", str(test), "--out", str(out),
                "--json")
    assert r.exit_code == 0, r.output
    assert "━" not in r.stdout and "systems" not in r.stdout.replace('"systems"', "")
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    assert rep["report"] == str(out / "report.md") and rep["systems"][0]["system"] == "gz"
    assert len(opened) == 1  # no --open, no browser
