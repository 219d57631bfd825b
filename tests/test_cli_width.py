"""``--help`` and the tables read whole in an 80-column terminal: every verb's help (and
``config show``) is rendered at ``COLUMNS=80`` and no word of it may be cut (rich folds a word
that does not fit its column into pieces, or ends it with an ellipsis), no flag may show a
``<bool>`` metavar, no raw RST (``double backticks``) may reach the user, and the command lists
give each verb a one-line summary.

A cut word is found by its absence: every word of the texts behind the help (the docstring, each
option's help, names, variables and defaults) must appear whole among the words printed.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from typer.testing import CliRunner, Result

COLUMNS = {"COLUMNS": "80"}
WORD = re.compile(r"\w+")


def _app() -> Any:
    from tickertag.cli import _register_all, app

    if not app.registered_commands:
        _register_all()
    return app


def _commands() -> list[tuple[list[str], Any]]:
    """(path, click command) for the root, every group and every verb."""
    import typer

    out: list[tuple[list[str], Any]] = []

    def walk(cmd: Any, path: list[str]) -> None:
        out.append((path, cmd))
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            walk(sub, [*path, name])

    walk(typer.main.get_command(_app()), [])
    return out


COMMANDS = _commands()


def _render(*args: str) -> Result:
    r = CliRunner().invoke(_app(), list(args), env=COLUMNS)
    assert r.exit_code == 0, r.output
    return r


def _texts(cmd: Any) -> list[str]:
    """What the help of ``cmd`` is made from, before rich lays it out."""
    from tickertag.cli_common import help_text

    texts = [help_text(cmd.help) or ""]
    for p in cmd.params:
        texts += [*p.opts, *getattr(p, "secondary_opts", []), getattr(p, "help", None) or ""]
        envvar = getattr(p, "envvar", None)
        texts += [envvar] if isinstance(envvar, str) else list(envvar or [])
        show = getattr(p, "show_default", None)
        if isinstance(show, str):
            texts.append(show)
    for name in getattr(cmd, "commands", {}):
        texts.append(name)
    return texts


def cut_words(output: str, texts: list[str]) -> list[str]:
    """Words of ``texts`` that do not appear whole in ``output``."""
    shown = set(WORD.findall(output))
    return sorted({w for t in texts for w in WORD.findall(t)} - shown)


def test_the_check_sees_a_folded_word_and_an_ellipsis():
    from rich.console import Console
    from rich.table import Table

    console = Console(width=30, record=True, file=open("/dev/null", "w"))
    t = Table("environment variable", "value")
    t.add_row("TICKERTAG_ENDPOINT_PRICE_PER_HOUR", "smollm2-135m-instruct-q4_1")
    console.print(t)
    out = console.export_text()
    assert "…" in out or cut_words(out, ["TICKERTAG_ENDPOINT_PRICE_PER_HOUR"])


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=[" ".join(p) or "tickertag" for p, _ in COMMANDS])
def test_help_fits_80_columns(path: list[str], cmd: Any):
    out = _render(*path, "--help").output
    assert "…" not in out, out
    assert "``" not in out, out  # RST from a docstring, shown raw
    assert "<bool>" not in out, out
    assert all(len(line) <= 80 for line in out.splitlines()), out
    assert cut_words(out, _texts(cmd)) == [], out


@pytest.mark.parametrize("path,cmd", [(p, c) for p, c in COMMANDS if hasattr(c, "commands")],
                         ids=lambda x: " ".join(x) or "tickertag" if isinstance(x, list) else "")
def test_each_verb_has_a_one_line_summary(path: list[str], cmd: Any):
    """In the command list, each verb's row is one line (a long first paragraph wrapped to
    three or four, a long docstring's line breaks showed up mid-sentence)."""
    out = _render(*path, "--help").output
    panel = out[out.index("Commands"):]
    rows = [line for line in panel.splitlines()[1:] if line.startswith("│")]
    names = [line.split()[1] for line in rows if line[2] != " "]
    assert sorted(names) == sorted(cmd.commands), rows
    assert len(rows) == len(cmd.commands), "\n".join(rows)


def test_config_show_keeps_names_and_values_whole():
    from common.settings import get_settings

    s = get_settings()
    out = _render("config", "show").output
    assert "…" not in out, out
    assert all(len(line) <= 80 for line in out.splitlines()), out
    names = [f"TICKERTAG_{n.upper()}" for n in type(s).model_fields]
    values = [str(getattr(s, n)) for n in type(s).model_fields
              if "secret" not in type(getattr(s, n)).__name__.lower()]
    # a value longer than the room left beside the longest name (a deep path) may wrap
    room = 80 - max(map(len, names)) - 7
    assert cut_words(out, names + [v for v in values if len(v) <= room]) == [], out


@pytest.fixture
def console80(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The consoles of the report and review commands, 80 columns wide, recording."""
    import io

    from rich.console import Console

    c = Console(width=80, record=True, file=io.StringIO())
    for mod in ("tickertag.cli_report", "tickertag.cli_review"):
        monkeypatch.setattr(f"{mod}.console", c)
    return c


def _cells(tables: list[tuple[list[str], list[list[str]]]]) -> list[str]:
    return [c for header, rows in tables for c in [*header, *(x for r in rows for x in r)]]


def test_report_prints_tables_that_fit_not_markdown(console80: Any):
    """The report as it is committed (training/report/report.json): rich tables, every header
    and cell whole, no Markdown pipes."""
    import json

    from common.paths import CODE_ROOT
    from tickertag.cli_report import print_report
    from training.report import sections

    rep = json.loads((CODE_ROOT / "training" / "report" / "report.json").read_text())
    files = ["benzinga_gold_test.jsonl", "benzinga_gold_test2.jsonl"]
    print_report(rep, files)
    out = console80.export_text()
    assert "|---" not in out and "| system |" not in out  # not report.md
    assert "┃ system" in out
    secs = sections(rep["systems"], files, rep.get("curve"), rep.get("pairs"),
                    rep.get("silver_curve"), rep.get("linking"))
    assert len(secs) >= 2
    assert "…" not in out and all(len(line) <= 80 for line in out.splitlines()), out
    assert cut_words(out, _cells([(s.header, s.rows) for s in secs])) == [], out


REVIEW = {"run": "a-rather-long-run-name", "seconds": 1.2, "workspace": "argilla", "splits": {
    split: {"dataset": f"tickertag-a-rather-long-run-name-{split}", "records": 1200,
            "submitted": 1180, "pending": 15, "discarded": 5, "created": True, "priority": 40,
            "rejected": [], "seconds": 3.4, "invalid_responses": [],
            "reviewers_agreement": {"exact": 130, "records": 140, "pairwise_f1": 0.9512},
            "llm_vs_reviewed": {"precision": 0.9312, "recall": 0.9111, "f1": 0.9210},
            "output": f"/home/someone/projects/tickertag/runs/a-rather-long-run-name/reviewed/"
                      f"{split}.jsonl"}
    for split in ("train", "valid", "test")}}


@pytest.mark.parametrize("verb", ["push", "pull"])
def test_review_tables_keep_headers_and_values_whole(verb: str, console80: Any,
                                                     monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(f"workers.review.argilla.{verb}", lambda *a, **kw: REVIEW)
    r = CliRunner().invoke(_app(), ["review", verb, "a-rather-long-run-name"], env=COLUMNS)
    assert r.exit_code == 0, r.output
    out = console80.export_text()
    tables = [line for line in out.splitlines() if not line.startswith("written ")]
    assert "…" not in out and all(len(line) <= 80 for line in tables), out
    if verb == "pull":
        words = ["records", "submitted", "pending", "discarded", "reviewers agree",
                 "130/140 exact, F1 0.951", "0.931 / 0.911 / 0.921"]
        for split in REVIEW["splits"]:  # each path on a line of its own, whole
            assert f"written {split}: {REVIEW['splits'][split]['output']}" in out.splitlines()
    else:
        words = ["dataset", "review first", "left out",
                 "tickertag-a-rather-long-run-name-train (new)"]
    assert cut_words(out, words) == [], out


def test_demo_closing_table_keeps_every_cell_whole(monkeypatch: pytest.MonkeyPatch):
    """``make demo``'s last table, built from the rows ``run_demo`` returns (the real
    ``summary_rows`` at the default prices), read at 80 columns: no cell cut or ellipsised."""
    import io

    from rich.console import Console

    from common.settings import Settings
    from tickertag import cli_demo
    from tickertag.demo import summary_rows

    c = Console(width=80, record=True, file=io.StringIO())
    monkeypatch.setattr(cli_demo, "console", c)
    rows = summary_rows({"f1": 0.4123, "ci95": [0.3011, 0.5209], "headlines": 30,
                         "headlines_per_s": 0.87},
                        {"f1": 0.8061, "ci95": [0.7512, 0.8544], "headlines": 608},
                        {"headlines_per_s": 412.3}, Settings())
    header, cells = cli_demo.closing_table(rows)
    cli_demo.print_fitted(c, header, cells, title="LLM vs compact model (measured in this demo)")
    assert c.export_text(clear=False).count("┏") == 1  # one table, not split in pieces
    out = c.export_text()
    assert "…" not in out and all(len(line) <= 80 for line in out.splitlines()), out
    assert cut_words(out, [*header, *(x for r in cells for x in r)]) == [], out
    assert "0.412 [0.301, 0.521]" in out and "SmolLM2-135M" in out
