"""The cascade's rounds table fits an 80-column terminal with every figure whole, one column a
round (ten figures side by side cut every header and the dollar amounts)."""

from __future__ import annotations

from rich.console import Console

from tickertag.cli_cascade import rounds_table


def _report(r: int, calls: int) -> dict:
    return {"round": r,
            "llm": {"contested": 1536, "escalated": 1536, "llm_calls": calls,
                    "calls_share_of_pool": calls / 24458, "llm_cost_usd": 0.057446,
                    "whole_pool_cost_usd": 1.603905, "dead": 1536 - calls},
            "people": {"sent": 270, "answered": 268},
            "student": {"valid_f1": 0.94521}}


def test_three_rounds_fit_80_columns_with_every_figure_whole():
    console = Console(width=80, record=True)
    console.print(rounds_table([_report(1, 876), _report(2, 1201), _report(3, 999)]))
    out = console.export_text()
    assert "…" not in out and all(len(line) <= 80 for line in out.splitlines())
    for figure in ("876", "1201", "$0.0574", "$1.6039", "3.6%", "4.9%", "0.9452", "268", "660"):
        assert figure in out, figure
