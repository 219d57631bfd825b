"""Cards as the Hugging Face Hub reads them: a ``README.md`` that starts with YAML front matter
(the Hub's metadata: license, language, tags, ...) followed by Markdown for people.

Two kinds are written: the model card of a model directory (``training/card.py``) and, here, the
dataset card of a run exported by ``tickertag export``. Both follow one rule for paths: a card
is published, so it must not carry this machine's absolute paths (they leak a user name and
mean nothing elsewhere). :func:`shown_path` names a file as the project's commands name it: a
shipped file as ``data/...`` or ``training/configs/...``, an output relative to
``TICKERTAG_HOME`` (``common.paths.home``), anything else by its file name.

Where the dataset card goes (:func:`dataset_card_path`): ``README.md`` next to the exported
file, the name the Hub shows, unless a ``README.md`` is already there that is not this file's
card (the user's own notes, or the card of another export in the same folder); then
``<file stem>.README.md`` (``fnspid.README.md`` for ``fnspid.parquet``), and
``<file name>.README.md`` if even that name is taken by something else. A card says which file
it describes in an HTML comment (invisible on the Hub), so a rerun of the same export rewrites
its own card and never someone else's. ``tickertag push --dataset`` finds the card the same way
and uploads it as the repository's ``README.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from common.jsonl import iter_jsonl
from common.paths import CONFIGS_DIR, DATA_DIR, DATA_TOKEN, home

DATASET_LICENSE = "cc-by-nc-4.0"  # FNSPID's, which every shipped headline comes from
FNSPID_HUB_ID = "Zihan1004/FNSPID"
FNSPID_CITATION = ("Dong, Fan & Peng (2024), *FNSPID: A Comprehensive Financial News Dataset "
                   "in Time Series*, arXiv:2402.06698")
_MARKER = re.compile(r"<!-- tickertag dataset card for (.+?) -->")


def shown_path(path: str | Path) -> str:
    """``path`` as a card may print it: never an absolute path of this machine (module doc).

    A relative path is kept as given: the commands read it from ``TICKERTAG_HOME``."""
    s = str(path)
    if s.startswith(DATA_TOKEN):  # a path as the train queue carries it
        return "data/" + s.removeprefix(DATA_TOKEN)
    p = Path(s).expanduser()
    if not p.is_absolute():
        return p.as_posix()
    real = p.resolve()
    for root, prefix in ((DATA_DIR.resolve(), "data/"), (CONFIGS_DIR.resolve(), "training/configs/"),
                         (home(), "")):
        if real.is_relative_to(root):
            return prefix + real.relative_to(root).as_posix()
    # A shipped file as another install placed it (a wheel's tickertag/bundled/labeled/...).
    if real.parent.parent.name in ("data", "bundled") and (
            DATA_DIR / real.parent.name / real.name).exists():
        return f"data/{real.parent.name}/{real.name}"
    return p.name


def render(meta: dict[str, Any], body: str) -> str:
    """A card: the metadata as YAML front matter, then the Markdown body."""
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{front}---\n\n{body.rstrip()}\n"


def front_matter(card: str) -> dict[str, Any]:
    """The YAML metadata of a card (what the Hub parses), ``{}`` when it has none."""
    m = re.match(r"^---\n(.*?)\n---\n", card, re.S)
    return (yaml.safe_load(m.group(1)) or {}) if m else {}


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` rows."""
    buckets = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
               (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"),
               (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    return next((label for top, label in buckets if n < top), "n>1B")


# --- dataset cards -----------------------------------------------------------------------

# What the columns of an exported run mean (workers/annotate/batch.py and workers/ner/batch.py
# write them); a column not listed here is shown with its type only.
FIELDS: dict[str, str] = {
    "key": "result key: headline id, labelling model and prompt version (one row per key)",
    "id": "headline id: the first 16 hex characters of the SHA-1 of `text`",
    "text": "the headline",
    "date": "publication date, as the source gave it",
    "stock_symbol": "the stock symbol the source filed the headline under",
    "source": "where the source row came from",
    "entities": "`Company` spans: `start`/`end` character offsets into `text` (end exclusive), "
                "`label`, `text`",
    "companies": "the company names the LLM answered, as it wrote them",
    "normalized": "the LLM's normalised company names",
    "hallucinated": "names the LLM answered that do not occur in `text` (no span)",
    "valid": "whether the answer parsed; an invalid answer has no entities and keeps `raw`",
    "invalid_reason": "why an answer did not parse",
    "warning": "a note on an answer that parsed with repairs",
    "raw": "the LLM's raw answer when it did not parse",
    "model": "the labelling model: an LLM name, or `kind:model directory` for a tagger",
    "model_fingerprint": "a tagger's fingerprint: a hash of its manifest and weight files, so "
                         "results of a model retrained in the same directory stay apart",
    "prompt_version": "version of the annotation prompt",
    "response_format": "how structured output was requested from the LLM server",
    "usage": "prompt and completion tokens of the LLM call",
    "cached": "whether the answer came from the LLM cache",
    "attempts": "LLM calls made for this headline",
    "retries": "LLM calls retried after a transient error",
    "llm_seconds": "seconds spent in the LLM (or the tagger) for this headline",
    "annotated_at": "Unix time of the annotation",
    "tagged_at": "Unix time of the tagging",
    "tickers": "tickers linked to the headline's spans (with an alias table)",
}


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    return "struct" if isinstance(v, dict) else "null"


def _shown_model(name: str) -> str:
    """A tagger run names its model ``kind:/abs/model/dir``: the path part is shown."""
    kind, sep, rest = name.partition(":")
    if sep and ("/" in rest or "\\" in rest):
        return f"{kind}:{shown_path(rest)}"
    return shown_path(name) if Path(name).is_absolute() else name


def describe_file(path: str | Path) -> dict[str, Any]:
    """Rows, columns (name -> type) and the labelling models / prompt versions of an exported
    run, read back from the file itself, so a card can be written for any export (also one
    made before cards existed, by ``tickertag push --dataset``)."""
    p = Path(path)
    columns: dict[str, str] = {}
    seen: dict[str, set[str]] = {"model": set(), "prompt_version": set()}
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq

        schema = pq.read_schema(p)
        columns = {f.name: str(f.type) for f in schema}
        rows = pq.read_metadata(p).num_rows
        wanted = [c for c in seen if c in columns]
        if wanted and rows:
            table = pq.read_table(p, columns=wanted)
            for c in wanted:
                seen[c] = {str(v) for v in table.column(c).to_pylist() if v is not None}
    else:
        rows = 0
        for rec in iter_jsonl(p):
            rows += 1
            for k, v in rec.items():
                if columns.get(k, "null") == "null":
                    columns[k] = _json_type(v)
            for c in seen:
                if rec.get(c) is not None:
                    seen[c].add(str(rec[c]))
    return {"rows": rows, "columns": columns,
            "models": sorted(_shown_model(m) for m in seen["model"]),
            "prompt_versions": sorted(seen["prompt_version"])}


def _card_for(readme: Path) -> str | None:
    """The file name a tickertag dataset card says it describes; None for any other file."""
    try:
        m = _MARKER.search(readme.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    return m.group(1) if m else None


def dataset_card_path(data_file: str | Path) -> Path:
    """Where the card of ``data_file`` is (or goes): see the module doc. Raises
    FileExistsError when every candidate name is taken by a file that is not its card."""
    p = Path(data_file)
    names = [p.parent / "README.md", p.parent / f"{p.stem}.README.md",
             p.parent / f"{p.name}.README.md"]
    for c in names:
        if c.exists() and _card_for(c) == p.name:
            return c
    for c in names:
        if not c.exists():
            return c
    raise FileExistsError(f"no free name for the dataset card of {p}: "
                          f"{', '.join(c.name for c in names)} all exist and are not its card")


def _table(rows: Iterable[tuple[str, ...]], head: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def dataset_card(data_file: str | Path, run_id: str | None = None) -> str:
    """The card text of an exported run (YAML front matter + Markdown)."""
    p = Path(data_file)
    info = describe_file(p)
    n = info["rows"]
    fmt = "Parquet" if p.suffix == ".parquet" else "JSON Lines"
    meta = {
        "license": DATASET_LICENSE,
        "task_categories": ["token-classification"],
        "language": ["en"],
        "size_categories": [size_category(n)],
        "pretty_name": f"tickertag {run_id or p.stem}: company mentions in financial headlines",
        "tags": ["finance", "ner", "tickertag"],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": "train", "path": p.name}]}],
    }
    run = f"run `{run_id}`" if run_id else "a tickertag run"
    rows = f"{n:,} row" + ("" if n == 1 else "s")
    models = ", ".join(f"`{m}`" for m in info["models"]) or "not recorded"
    prompts = ", ".join(f"`{v}`" for v in info["prompt_versions"])
    prompts = f" (prompt version {prompts})" if prompts else ""
    fields = _table(((f"`{k}`", f"`{t}`", FIELDS.get(k, "")) for k, t in info["columns"].items()),
                    ("field", "type", "what")) if info["columns"] else "(no rows)"
    loader = "parquet" if p.suffix == ".parquet" else "json"
    body = f"""<!-- tickertag dataset card for {p.name} -->
# {run_id or p.stem}

English financial news headlines with their `Company` mentions as character spans, exported by
`tickertag export` from {run}: **{rows}** in `{p.name}` ({fmt}), one row per headline,
labelling model and prompt version.

## Source

- Headlines: the rows the run read. tickertag's shipped headlines and `hub:{FNSPID_HUB_ID}`
  are FNSPID's Benzinga rows ({FNSPID_CITATION}).
- Labels: {models}{prompts}, following tickertag's
  labelling guidelines (`data/labeled/LABELING.md`): one label, `Company`, for company names
  and stock tickers; indices, sectors, products, people and regulators are not marked.
- Machine labels, not reviewed: expect the labelling model's errors.

## Fields

{fields}

## License

CC BY-NC 4.0 (`{DATASET_LICENSE}`), FNSPID's license: non-commercial use only, with
attribution. If the run read headlines from another source, that source's license applies
instead; change `license` above.

## Use

```python
from datasets import load_dataset

rows = load_dataset("{loader}", data_files="{p.name}", split="train")
```
"""
    return render(meta, body)


def write_dataset_card(data_file: str | Path, run_id: str | None = None) -> Path:
    """Write (or rewrite) the card of an exported run next to it; return its path."""
    path = dataset_card_path(data_file)
    path.write_text(dataset_card(data_file, run_id), encoding="utf-8")
    return path
