"""CLI for curation: ``tickertag curate RUN``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def curate(
    run: Annotated[str, typer.Argument(help="Annotation run to curate.")],
    threshold: Annotated[float, typer.Option(help="Levenshtein similarity to merge names.")] = 85,
    fraction: Annotated[float, typer.Option(help="Share of each company cluster's headlines.")
                        ] = 0.05,
    empty_fraction: Annotated[float, typer.Option(help="Share of no-company headlines.")] = 0.05,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Cluster company names, sample for review, split by year, export training sets."""
    from common.sampling import SampleOptions
    from common.settings import get_settings
    from workers.curate import curate_run

    opts = SampleOptions(threshold=threshold, company_fraction=fraction,
                         empty_fraction=empty_fraction, seed=seed)
    with console.status("clustering and sampling..."):
        rep = curate_run(run, opts, get_settings())
    t = Table(title=f"curated run {run}", show_header=False)
    for k in ("results", "valid", "with_company", "mentions", "clusters", "sampled",
              "outside_splits", "seconds"):
        t.add_row(k, str(rep[k]))
    for k, v in rep["splits"].items():
        t.add_row(f"split {k}", str(v))
    console.print(t)
    top = Table(title="largest clusters")
    top.add_column("representative")
    top.add_column("mentions", justify="right")
    for name, n in rep["largest"]:
        top.add_row(name, str(n))
    console.print(top)
    console.print(f"written to {rep['output']} (cluster_report.md, {{train,valid,test}}.jsonl, "
                  "hf/, gliner/, spanmarker/)")


def register(app: typer.Typer) -> None:
    app.command()(curate)
