"""CLI: ``tickertag config show``, every effective setting and the variable that sets it."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from common.settings import get_settings

console = Console()

config_app = typer.Typer(help="The effective settings.\n\nEnvironment > tickertag.toml > defaults.")


@config_app.command("show")
def config_show(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
                ) -> None:
    """Print every setting and its TICKERTAG_* variable.

    Secrets are masked."""
    from pydantic import SecretStr

    s = get_settings()
    rows = {}
    for name in type(s).model_fields:
        v = getattr(s, name)
        rows[name] = ("********" if v.get_secret_value() else "") if isinstance(v, SecretStr) \
            else v
    if as_json:
        print(json.dumps(rows, default=str))
        return
    # Two columns, the variable never wrapped: the setting's own name is the variable's tail
    # (a third column for it left values cut to "smollm2-135m-instruct-…" in 80 columns).
    t = Table(title="tickertag settings (TICKERTAG_<SETTING>)")
    t.add_column("environment variable", no_wrap=True)
    t.add_column("value", overflow="fold")
    for name, v in rows.items():
        t.add_row(f"TICKERTAG_{name.upper()}", str(v))
    console.print(t)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
