"""The user's fixes to an alias table (name -> ticker, or name -> nothing), read when the table
is loaded so a fix needs no rebuild."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path


def read_overrides(path: str | Path) -> dict[str, str | None]:
    """An overrides file: JSON or TOML (by suffix), either flat (``"Target" = "TGT"``) or under
    an ``overrides`` key/table. TOML has no null, so ``""`` or ``false`` also unlinks."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    data = tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
    if isinstance(data, dict) and isinstance(data.get("overrides"), dict):
        data = data["overrides"]
    if not isinstance(data, dict):
        raise ValueError(f"{p}: overrides must be a mapping of name -> ticker or null")
    out: dict[str, str | None] = {}
    for name, ticker in data.items():
        if ticker in (None, "", False):
            out[str(name)] = None
        elif isinstance(ticker, str):
            out[str(name)] = ticker
        else:
            raise ValueError(f"{p}: override for {name!r} must be a ticker string or null, "
                             f"not {ticker!r}")
    return out
