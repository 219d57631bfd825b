"""Model and dataset cards as the Hugging Face Hub reads them, and ``tickertag push``.

Nothing here trains a model or reaches the Hub: model directories are a blank spaCy pipeline
under a hand-written ``tickertag.json`` (the shape ``tickertag train spacy`` writes), and the
two ``HfApi`` methods a push calls are replaced by recorders (the Hub cannot be reached from
the test machines)."""

from __future__ import annotations

import json
import logging
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import huggingface_hub
import pytest
import yaml
from typer.testing import CliRunner, Result

from common.cards import dataset_card_path, front_matter, shown_path, size_category
from common.paths import CODE_ROOT, DATA_DIR, LABELED_DIR
from common.settings import get_settings
from distil.plan import LABELLED_TRAIN, LABELLED_VALID
from training.card import model_card, refresh_model_card, write_model_card
from training.config import TrainConfig
from training.manifest import MANIFEST

FAKE_TOKEN = "hf_fakeTokenThatMustNeverBeShown0123456789"
TASK = {"type": "token-classification", "name": "Named Entity Recognition (Company)"}
TAGS = ["token-classification", "ner", "finance"]
VALID = "benzinga_gold_valid+benzinga_llm_extra_valid"


def cli() -> Any:
    from tickertag.cli import _register_all, app

    if not app.registered_commands:
        _register_all()
    return app


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli(), list(args))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TICKERTAG_HOME in tmp_path, and the tests run from elsewhere (the cwd is not home)."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("TICKERTAG_HOME", str(h))
    return h


@pytest.fixture(scope="module")
def blank_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A blank English spaCy pipeline saved once (the first save takes seconds)."""
    import spacy

    p = tmp_path_factory.mktemp("spacy") / "pipeline"
    spacy.blank("en").to_disk(p)
    return p


def _copy_pipeline(src: Path, model_dir: Path) -> None:
    import shutil

    shutil.copytree(src, model_dir / "pipeline")


def _write_manifest(model_dir: Path, manifest: dict[str, Any]) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))


def _student(home: Path, blank_pipeline: Path) -> Path:
    """A distilled spaCy student as ``tickertag distil`` leaves it (the paths absolute, as a
    run under TICKERTAG_HOME writes them), with test scores as ``evaluate --json`` rows."""
    d = home / "models" / "student"
    silver = home / "var" / "distil" / "student" / "silver-agreed.jsonl"
    cfg = TrainConfig.from_file("student", kind="spacy", train=[*LABELLED_TRAIN, str(silver)],
                                valid=LABELLED_VALID, output=str(d), seed=42).model_dump()
    _write_manifest(d, {
        "kind": "spacy", "family": "spacy.v1", "threshold": 0.0, "valid_f1": 0.9381,
        "best_epoch": 7, "best_epoch_valid_f1": 0.9381, "history": [],
        "train_headlines": 27012, "train_seconds": 1297.4, "device": "cpu", "config": cfg,
        "model": "pipeline", "entity_labels": ["Company"], "spans_dropped": 3,
        "distil": {"silver_headlines": 24120, "silver": str(silver),
                   "teachers": [str(home / "models" / "teacher"), "models/teacher-s7"],
                   "drop_contested": True},
        "test": [{"gold": "benzinga_gold_test.jsonl", "precision": 0.9011, "recall": 0.8876,
                  "f1": 0.8943, "tp": 1, "fp": 1, "fn": 1, "n_docs": 208,
                  "f1_ci95": [0.8652, 0.9204]},
                 {"gold": "benzinga_gold_test2.jsonl", "precision": 0.9, "recall": 0.91,
                  "f1": 0.905, "tp": 1, "fp": 1, "fn": 1, "n_docs": 400,
                  "f1_ci95": [0.8841, 0.9247]}]})
    _copy_pipeline(blank_pipeline, d)
    return d


def _no_machine_paths(text: str, home: Path) -> None:
    for root in (home, home.parent, DATA_DIR, CODE_ROOT, Path.cwd()):
        assert str(root) not in text, root
    assert "/tmp/" not in text


# --- model cards -------------------------------------------------------------------------

def test_spacy_student_card(home: Path, blank_pipeline: Path):
    d = _student(home, blank_pipeline)
    path = write_model_card(d)
    assert path == d / "README.md"
    card = path.read_text()
    assert card.startswith("---\n")
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta == front_matter(card)
    assert meta == {
        "datasets": ["Zihan1004/FNSPID"], "language": "en", "library_name": "spacy",
        "license": "cc-by-nc-4.0", "pipeline_tag": "token-classification", "tags": TAGS,
        # start = "blank" in the student recipe: a fresh NER, so no base_model
        "model-index": [{"name": "student", "results": [
            {"task": TASK, "dataset": {"name": VALID, "type": "Zihan1004/FNSPID",
                                       "config": VALID, "split": "validation"},
             "metrics": [{"type": "f1", "value": 0.9381, "name": "F1"}]},
            {"task": TASK, "dataset": {"name": "benzinga_gold_test", "type": "Zihan1004/FNSPID",
                                       "config": "benzinga_gold_test", "split": "test"},
             "metrics": [{"type": "f1", "value": 0.8943, "name": "F1 (95% CI 0.865-0.920)",
                          "args": {"ci95": [0.8652, 0.9204], "headlines": 208}},
                         {"type": "precision", "value": 0.9011, "name": "Precision"},
                         {"type": "recall", "value": 0.8876, "name": "Recall"}]},
            {"task": TASK, "dataset": {"name": "benzinga_gold_test2", "type": "Zihan1004/FNSPID",
                                       "config": "benzinga_gold_test2", "split": "test"},
             "metrics": [{"type": "f1", "value": 0.905, "name": "F1 (95% CI 0.884-0.925)",
                          "args": {"ci95": [0.8841, 0.9247], "headlines": 400}},
                         {"type": "precision", "value": 0.9, "name": "Precision"},
                         {"type": "recall", "value": 0.91, "name": "Recall"}]}]}]}
    body = card.split("---\n", 2)[2]
    assert "# student\n\nA distilled spaCy CNN NER pipeline (tickertag family `spacy.v1`)" in body
    assert "One label, `Company`" in body
    assert "| benzinga_gold_test | test | 208 | 0.8943 | 0.865-0.920 |" in body
    assert "| benzinga_gold_test2 | test | 400 | 0.9050 | 0.884-0.925 |" in body
    assert f"| {VALID} | validation | | 0.9381 | |" in body
    assert ("The test sets are small: benzinga_gold_test (208 headlines), benzinga_gold_test2 "
            "(400 headlines)") in body
    assert "English Benzinga-style headlines (FNSPID, 2009-2020 sources" in body
    for f in ("data/labeled/benzinga_gold_train.jsonl", "data/labeled/benzinga_llm_train.jsonl",
              "data/labeled/benzinga_llm_extra_train.jsonl",
              "var/distil/student/silver-agreed.jsonl"):
        assert f"- `{f}`\n" in body
    assert ("Validation (picks the epoch, and the threshold of a model that scores spans; "
            "never a test file): "
            "`data/labeled/benzinga_gold_valid.jsonl`, "
            "`data/labeled/benzinga_llm_extra_valid.jsonl`") in body
    assert "27,012 training headlines; best epoch 7 of 10; 1297.4 s on cpu." in body
    assert ("Distilled: 24,120 silver headlines (`var/distil/student/silver-agreed.jsonl`) that "
            "the teachers `models/teacher`, `models/teacher-s7` tagged") in body
    assert ("## Rebuild\n\n```bash\ntickertag distil --teacher models/teacher --teacher "
            "models/teacher-s7 --output models/student\n```") in body
    assert ("```bash\ntickertag predict --model models/student --input IN.jsonl --output "
            "OUT.jsonl\n```") in body
    assert 'spacy.load("models/student/pipeline")' in body
    _no_machine_paths(card, home)


def test_the_card_is_rewritten_the_same(home: Path, blank_pipeline: Path):
    d = _student(home, blank_pipeline)
    first = write_model_card(d).read_text()
    (d / "README.md").write_text("stale notes")
    assert write_model_card(d).read_text() == first
    m = json.loads((d / MANIFEST).read_text())
    m["valid_f1"] = 0.95
    (d / MANIFEST).write_text(json.dumps(m))
    assert "| 0.9500 |" in write_model_card(d).read_text()


def test_gliner_teacher_card_names_its_base_and_recipe(home: Path):
    d = home / "models" / "teacher-s7"
    cfg = TrainConfig.from_file("teacher", seed=7, output="models/teacher-s7").model_dump()
    assert cfg["output"] == str(d)  # under TICKERTAG_HOME, absolute
    _write_manifest(d, {"kind": "gliner", "family": "gliner.v1", "threshold": 0.45,
                        "valid_f1": 0.9123, "config": cfg, "train_headlines": 3200,
                        "test": {"gold": "benzinga_gold_test.jsonl", "f1": 0.88,
                                 "precision": 0.87, "recall": 0.89, "n_docs": 208,
                                 "f1_ci95": [0.85, 0.91]}})
    card = model_card(d)
    meta = front_matter(card)
    assert meta["library_name"] == "gliner"
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"  # local:minilm
    assert meta["model-index"][0]["results"][0]["metrics"] == [
        {"type": "f1", "value": 0.9123, "name": "F1"}]
    assert [r["dataset"]["name"] for r in meta["model-index"][0]["results"]] == [
        VALID, "benzinga_gold_test"]
    assert ("```bash\ntickertag train gliner --config teacher --seed 7 --output "
            "models/teacher-s7\n```") in card
    assert f"| {VALID} | validation (threshold 0.45) | | 0.9123 | |" in card
    assert 'GLiNER.from_pretrained("models/teacher-s7")' in card
    _no_machine_paths(card, home)


def test_a_config_no_recipe_makes_is_given_as_config_json(home: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    d = home / "models" / "sm"
    cfg = TrainConfig(kind="spanmarker", base="tomaarsen/span-marker-bert-base-orgs",
                      max_len=96, output="models/sm").model_dump()
    _write_manifest(d, {"kind": "spanmarker", "family": "spanmarker.v1", "threshold": 0.5,
                        "valid_f1": 0.8, "config": cfg})
    card = model_card(d)
    meta = front_matter(card)
    assert (meta["library_name"], meta["base_model"]) == (
        "span-marker", "tomaarsen/span-marker-bert-base-orgs")
    assert "tickertag train spanmarker --config config.json --output models/sm\n" in card
    block = card.split("```json\n", 1)[1].split("\n```", 1)[0]
    saved = json.loads(block)
    assert saved["train"] == ["data/labeled/benzinga_gold_train.jsonl"]
    assert saved["valid"] == "data/labeled/benzinga_gold_valid.jsonl"
    # The block, saved and read back from the home, is the same training run.
    monkeypatch.chdir(home)
    (home / "config.json").write_text(block)
    again = TrainConfig.from_file("config.json").model_dump()
    assert {k: v for k, v in again.items() if k not in ("train", "valid", "output")} == {
        k: v for k, v in cfg.items() if k not in ("train", "valid", "output")}
    assert [Path(p).name for p in again["train"]] == ["benzinga_gold_train.jsonl"]
    _no_machine_paths(card, home)


def _onnx_manifest(home: Path) -> dict[str, Any]:
    cfg = TrainConfig(kind="gliner", output="models/gliner").model_dump()
    return {"kind": "gliner-onnx", "family": "gliner.v1", "threshold": 0.5, "valid_f1": 0.9,
            "config": cfg, "onnx_file": "model_int8.onnx", "quantized": "int8-ffn-fp32",
            "factored_span_head": True, "exported_from": str(home / "models" / "gliner"),
            "check": {"file": str(LABELED_DIR / "benzinga_gold_test.jsonl"), "headlines": 208,
                      "torch_f1": 0.8812, "onnx_f1": 0.8791, "f1_change": -0.0021,
                      "max_f1_drop": 0.005, "passed": True}}


def test_onnx_export_card(home: Path):
    d = home / "models" / "gliner-onnx"
    _write_manifest(d, _onnx_manifest(home))
    card = model_card(d)
    meta = front_matter(card)
    assert meta["library_name"] == "gliner" and meta["tags"] == [*TAGS, "onnx"]
    results = meta["model-index"][0]["results"]
    assert results[0]["metrics"][0]["name"] == "F1 (the torch model before export)"
    assert results[1] == {"task": TASK, "dataset": {"name": "benzinga_gold_test",
                                                    "type": "Zihan1004/FNSPID",
                                                    "config": "benzinga_gold_test",
                                                    "split": "test"},
                          "metrics": [{"type": "f1", "value": 0.8791,
                                       "name": "F1 (ONNX; torch 0.8812)"}]}
    valid = _onnx_manifest(home)
    valid["check"]["file"] = "data/labeled/benzinga_gold_valid.jsonl"
    _write_manifest(d, valid)  # the usual check file is valid: never published as a test score
    onnx = [r for r in front_matter(model_card(d))["model-index"][0]["results"]
            if any(m["name"].startswith("F1 (ONNX") for m in r["metrics"])]
    assert [r["dataset"]["split"] for r in onnx] == ["validation"]
    _write_manifest(d, _onnx_manifest(home))
    assert ("```bash\ntickertag train gliner --output models/gliner\ntickertag export-onnx "
            "--model models/gliner --output models/gliner-onnx\n```") in card
    _no_machine_paths(card, home)


def test_paths_outside_every_root_are_shown_by_name(home: Path, tmp_path: Path):
    assert shown_path(tmp_path / "elsewhere" / "x.jsonl") == "x.jsonl"
    assert shown_path(home / "models" / "a") == "models/a"
    assert shown_path(LABELED_DIR / "benzinga_gold_test.jsonl") == \
        "data/labeled/benzinga_gold_test.jsonl"
    assert shown_path("@data/labeled/x.jsonl") == "data/labeled/x.jsonl"
    assert shown_path("models/teacher") == "models/teacher"


def test_size_categories():
    assert [size_category(n) for n in (0, 999, 1000, 28_100, 900_000, 2_000_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M"]


# --- the places that write a manifest write the card ------------------------------------

def test_training_finish_writes_the_card(home: Path):
    from training.selection import EpochSelector, finish

    out = home / "models" / "spacy"
    out.mkdir(parents=True)
    cfg = TrainConfig(kind="spacy", output="models/spacy", epochs=3).model_dump()
    sel = EpochSelector(out, 3, [], 0.5, lambda texts, thr: [], lambda d: None)
    sel.state.update(best_epoch=3)
    finish(out, "spacy", sel, None, cfg, 10, "cpu", {"model": "pipeline", "threshold": 0.0})
    meta = front_matter((out / "README.md").read_text())
    assert meta["library_name"] == "spacy" and meta["base_model"] == "spacy/en_core_web_sm"
    assert "tickertag train spacy --epochs 3 --output models/spacy" in \
        (out / "README.md").read_text()


def test_distil_rewrites_the_students_card(home: Path, monkeypatch: pytest.MonkeyPatch):
    from distil.plan import DistilPlan
    from distil.student import train_student

    def fake_training(cfg: Any, on_progress: Any = None) -> dict[str, Any]:
        m = {"kind": cfg.kind, "family": "spacy.v1", "threshold": 0.0, "valid_f1": 0.93,
             "config": cfg.model_dump(), "model": "pipeline"}
        _write_manifest(Path(cfg.output), m)
        write_model_card(cfg.output)
        return m

    monkeypatch.setattr("training.runner.run_training", fake_training)
    plan = DistilPlan(teachers=["models/teacher"], output=str(home / "models" / "student"),
                      max_silver=0)
    train_student(plan, None, say=lambda m: None)
    card = (home / "models" / "student" / "README.md").read_text()
    assert ("tickertag distil --teacher models/teacher --output models/student --max-silver 0"
            in card)
    assert "Distilled: 0 silver headlines (none)" in card


def test_onnx_export_writes_the_card(home: Path, monkeypatch: pytest.MonkeyPatch):
    """The export itself replaced (GLiNER and torch are not loaded): the manifest and the card
    are what ``export_onnx`` writes around it."""
    from training.onnx_export import export_onnx

    src = home / "models" / "gliner"
    m = _onnx_manifest(home)
    _write_manifest(src, {"kind": "gliner", "family": "gliner.v1", "threshold": 0.5,
                          "valid_f1": 0.9, "config": m["config"]})

    class FakeGliner:
        @classmethod
        def from_pretrained(cls, *a: Any, **kw: Any) -> FakeGliner:
            return cls()

        def eval(self) -> None:
            pass

        def export_to_onnx(self, save_dir: Path, **kw: Any) -> None:
            Path(save_dir).mkdir(parents=True, exist_ok=True)
            (Path(save_dir) / "model.onnx").write_bytes(b"onnx")

    monkeypatch.setitem(sys.modules, "gliner", types.SimpleNamespace(GLiNER=FakeGliner))
    monkeypatch.setitem(sys.modules, "training.span_head",
                        types.SimpleNamespace(factor_span_heads=lambda model: 0))
    out = home / "models" / "gliner-onnx"
    export_onnx(src, out, quantize=False, check_file=None)
    card = (out / "README.md").read_text()
    assert front_matter(card)["tags"] == [*TAGS, "onnx"]
    assert ("tickertag export-onnx --model models/gliner --output models/gliner-onnx "
            "--no-quantize --no-check") in card


def test_a_card_that_cannot_be_written_never_fails_training(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.WARNING, logger="training.card"):
        assert refresh_model_card(tmp_path / "not-a-model") is None
    assert [r.getMessage() for r in caplog.records] == [
        f"could not write the model card of {tmp_path / 'not-a-model'}"]


# --- dataset cards (tickertag export) ----------------------------------------------------

def _rows(model_dir: Path) -> list[dict[str, Any]]:
    llm = [{"key": f"h{i}:smollm2:v3", "id": f"h{i}", "text": f"Apple Beats Estimates {i}",
            "date": "2019-05-01", "stock_symbol": "AAPL",
            "entities": [{"start": 0, "end": 5, "label": "Company", "text": "Apple"}],
            "valid": True, "model": "smollm2", "prompt_version": "v3"} for i in range(3)]
    tagger = [{"key": "h9:ner", "id": "h9", "text": "Acme Rises", "date": None,
               "stock_symbol": None, "entities": [], "valid": True,
               "model": f"spacy:{model_dir}", "tagged_at": 1.5}]
    return llm + tagger


def test_export_writes_a_dataset_card(results_dir: Path, tmp_path: Path, home: Path):
    from common.store import ResultStore

    ResultStore(str(results_dir), "cards").write_results("b1", _rows(home / "models" / "s"))
    out = tmp_path / "exports" / "fnspid.parquet"
    r = invoke("export", str(out), "--run", "cards")
    assert r.exit_code == 0, r.output
    card_path = tmp_path / "exports" / "README.md"
    assert "".join(r.stdout.split()) == f"wrote4resultsto{out}(datasetcard:{card_path})"
    card = card_path.read_text()
    meta = front_matter(card)
    assert meta == {
        "license": "cc-by-nc-4.0", "task_categories": ["token-classification"],
        "language": ["en"], "size_categories": ["n<1K"],
        "pretty_name": "tickertag cards: company mentions in financial headlines",
        "tags": ["finance", "ner", "tickertag"],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": "train", "path": "fnspid.parquet"}]}]}
    assert "from run `cards`: **4 rows** in `fnspid.parquet` (Parquet)" in card
    assert "- Labels: `smollm2`, `spacy:models/s` (prompt version `v3`)" in card
    assert "| `text` | `string` | the headline |" in card
    assert "| `entities` | `list<element: struct<" in card
    assert "| `prompt_version` | `string` | version of the annotation prompt |" in card
    assert 'load_dataset("parquet", data_files="fnspid.parquet", split="train")' in card
    _no_machine_paths(card, home)


def test_a_dataset_card_never_clobbers_a_readme(results_dir: Path, tmp_path: Path, home: Path):
    from common.store import ResultStore

    ResultStore(str(results_dir), "cards").write_results("b1", _rows(home / "models" / "s"))
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "README.md").write_text("my own notes\n")
    assert invoke("export", str(folder / "a.jsonl"), "--run", "cards", "--json").exit_code == 0
    assert (folder / "README.md").read_text() == "my own notes\n"
    card = (folder / "a.README.md").read_text()
    assert "**4 rows** in `a.jsonl` (JSON Lines)" in card
    assert front_matter(card)["configs"][0]["data_files"] == [{"split": "train",
                                                              "path": "a.jsonl"}]
    assert "| `entities` | `list` |" in card and "| `date` | `string` |" in card
    # Without the user's README: the first export's card is README.md, a rerun rewrites that
    # same card, and another export in the folder gets its own <stem>.README.md.
    other = tmp_path / "other"
    for name in ("b.jsonl", "b.jsonl", "c.jsonl"):
        assert invoke("export", str(other / name), "--run", "cards").exit_code == 0
    assert sorted(p.name for p in other.iterdir()) == ["README.md", "b.jsonl", "c.README.md",
                                                       "c.jsonl"]
    assert "`b.jsonl`" in (other / "README.md").read_text()
    assert dataset_card_path(other / "b.jsonl") == other / "README.md"
    assert dataset_card_path(other / "c.jsonl") == other / "c.README.md"


# --- tickertag push ----------------------------------------------------------------------

@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any, tuple, dict]]:
    """``HfApi``'s upload methods, recording (method, the token HfApi holds, args, kwargs)."""
    calls: list[tuple[str, Any, tuple, dict]] = []

    def recorder(name: str) -> Any:
        def method(self: huggingface_hub.HfApi, *a: Any, **kw: Any) -> Any:
            calls.append((name, self.token, a, kw))
            return "https://huggingface.co/org/name" if name == "create_repo" else None
        return method

    for name in ("create_repo", "upload_folder", "upload_file"):
        monkeypatch.setattr(huggingface_hub.HfApi, name, recorder(name))
    return calls


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    get_settings.cache_clear()
    yield FAKE_TOKEN
    get_settings.cache_clear()


def _pushable(home: Path, blank_pipeline: Path) -> Path:
    d = _student(home, blank_pipeline)
    (d / "checkpoints" / "checkpoint-3").mkdir(parents=True)
    (d / "checkpoints" / "checkpoint-3" / "optimizer.pt").write_bytes(b"x" * 10)
    (d / "train_state.json").write_text("{}")
    (d / ".cache").mkdir()
    (d / ".cache" / "lock").write_text("")
    return d


def test_push_dry_run_prints_the_plan_and_sends_nothing(home: Path, blank_pipeline: Path,
                                                        hub: list, token: str):
    d = _pushable(home, blank_pipeline)
    r = invoke("push", "--model", str(d), "--repo", "org/student", "--dry-run", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    expected_files = sorted(
        ["README.md", "tickertag.json"]
        + [p.relative_to(d).as_posix() for p in (d / "pipeline").rglob("*") if p.is_file()])
    assert [f["path_in_repo"] for f in out["files"]] == expected_files
    for f in out["files"]:
        if f["path_in_repo"] != "README.md":
            assert f["bytes"] == (d / f["path_in_repo"]).stat().st_size
            assert f["source"] == str(d / f["path_in_repo"])
    card = next(f for f in out["files"] if f["path_in_repo"] == "README.md")
    assert card["bytes"] == len(model_card(d).encode())
    assert {k: out[k] for k in ("repo", "repo_type", "private", "dry_run", "url")} == {
        "repo": "org/student", "repo_type": "model", "private": False, "dry_run": True,
        "url": None}
    assert out["bytes"] == sum(f["bytes"] for f in out["files"])
    assert hub == []  # nothing sent
    assert not (d / "README.md").exists()  # and nothing written
    text = invoke("push", "--model", str(d), "--repo", "org/student", "--dry-run")
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0] == "model repository org/student: dry run, nothing sent"
    assert lines[-1] == f"{len(expected_files)} files, {out['bytes']:,} bytes"
    assert any(ln.split()[:1] == ["tickertag.json"] for ln in lines)
    assert not any("checkpoint" in ln or "train_state" in ln or ".cache" in ln for ln in lines)
    assert FAKE_TOKEN not in r.output + text.output


def test_push_model_calls_the_hub_and_never_shows_the_token(
        home: Path, blank_pipeline: Path, hub: list, token: str,
        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture):
    from tickertag.cli_push import IGNORE

    d = _pushable(home, blank_pipeline)
    caplog.set_level(logging.DEBUG)
    r = invoke("push", "--model", str(d), "--repo", "org/student", "--private", "--json")
    assert r.exit_code == 0, r.output
    assert hub == [
        ("create_repo", FAKE_TOKEN, ("org/student",),
         {"repo_type": "model", "private": True, "exist_ok": True}),
        ("upload_folder", FAKE_TOKEN, (),
         {"repo_id": "org/student", "repo_type": "model", "folder_path": str(d),
          "ignore_patterns": IGNORE, "commit_message": "tickertag push: model student"})]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["url"] == "https://huggingface.co/org/name"  # what create_repo answered
    assert (d / "README.md").read_text() == model_card(d)  # written before the upload
    captured = capsys.readouterr()
    logged = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    assert f"pushed {len(out['files'])} files to model repository org/student" in logged
    for text in (r.stdout, r.stderr, captured.out, captured.err, *logged):
        assert FAKE_TOKEN not in text


def test_push_dataset_uploads_the_file_and_its_card_as_readme(
        results_dir: Path, tmp_path: Path, home: Path, hub: list, token: str):
    from common.store import ResultStore

    ResultStore(str(results_dir), "cards").write_results("b1", _rows(home / "models" / "s"))
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "README.md").write_text("my own notes\n")
    data = folder / "fnspid.parquet"
    assert invoke("export", str(data), "--run", "cards").exit_code == 0
    card = folder / "fnspid.README.md"
    dry = invoke("push", "--dataset", str(data), "--repo", "org/fnspid", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.stdout.strip().splitlines()[-1])
    assert plan["repo_type"] == "dataset" and hub == []
    assert [(f["source"], f["path_in_repo"], f["bytes"]) for f in plan["files"]] == [
        (str(data), "fnspid.parquet", data.stat().st_size),
        (str(card), "README.md", card.stat().st_size)]
    r = invoke("push", "--dataset", str(data), "--repo", "org/fnspid")
    assert r.exit_code == 0, r.output
    assert hub == [
        ("create_repo", FAKE_TOKEN, ("org/fnspid",),
         {"repo_type": "dataset", "private": False, "exist_ok": True}),
        ("upload_file", FAKE_TOKEN, (),
         {"path_or_fileobj": str(data), "path_in_repo": "fnspid.parquet",
          "repo_id": "org/fnspid", "repo_type": "dataset",
          "commit_message": "tickertag push: fnspid.parquet"}),
        ("upload_file", FAKE_TOKEN, (),
         {"path_or_fileobj": str(card), "path_in_repo": "README.md", "repo_id": "org/fnspid",
          "repo_type": "dataset", "commit_message": "tickertag push: README.md"})]
    assert (folder / "README.md").read_text() == "my own notes\n"
    assert FAKE_TOKEN not in r.output


def test_push_of_a_file_without_a_card_writes_one(tmp_path: Path, home: Path, hub: list,
                                                  token: str):
    data = tmp_path / "plain.jsonl"
    data.write_text(json.dumps({"id": "a", "text": "Acme Rises", "entities": []}) + "\n")
    dry = invoke("push", "--dataset", str(data), "--repo", "org/plain", "--dry-run")
    assert dry.exit_code == 0 and not (tmp_path / "README.md").exists()
    assert "(card, written now (none was there))" in dry.stdout
    assert invoke("push", "--dataset", str(data), "--repo", "org/plain").exit_code == 0
    card = (tmp_path / "README.md").read_text()
    assert "**1 row** in `plain.jsonl`" in card and hub[-1][3]["path_in_repo"] == "README.md"


def test_a_hub_error_is_one_line_without_the_token(home: Path, blank_pipeline: Path,
                                                   token: str, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture):
    from huggingface_hub.errors import HfHubHTTPError

    def refuse(self: Any, *a: Any, **kw: Any) -> None:
        raise HfHubHTTPError(f"401 Client Error: Unauthorized (Bearer {self.token})")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", refuse)
    d = _student(home, blank_pipeline)
    caplog.set_level(logging.DEBUG)
    r = invoke("push", "--model", str(d), "--repo", "org/student")
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit)
    assert r.stderr.strip() == "push: 401 Client Error: Unauthorized (Bearer ***)"
    assert FAKE_TOKEN not in r.output
    assert not any(FAKE_TOKEN in rec.getMessage() + (rec.exc_text or "")
                   for rec in caplog.records)


@pytest.mark.parametrize("args", [
    ("push", "--repo", "org/x"),  # neither --model nor --dataset
    ("push", "--repo", "org/x", "--model", "m", "--dataset", "d.jsonl"),  # both
    ("push", "--repo", "not a repo", "--model", "m"),
    ("push", "--model", "m"),  # no --repo
], ids=["neither", "both", "bad-repo", "no-repo"])
def test_push_usage_errors_exit_2(args: tuple[str, ...], hub: list):
    r = invoke(*args)
    assert r.exit_code == 2, r.output
    assert hub == []


def test_push_of_a_missing_model_fails_in_one_line(tmp_path: Path, hub: list):
    r = invoke("push", "--model", str(tmp_path / "nope"), "--repo", "org/x", "--dry-run")
    assert r.exit_code == 1
    assert r.stderr.strip() == f"push: {tmp_path / 'nope'} is not a model directory"
    not_model = tmp_path / "empty"
    not_model.mkdir()
    r = invoke("push", "--model", str(not_model), "--repo", "org/x", "--dry-run")
    assert r.exit_code == 1 and "is not a model directory" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and hub == []


def test_push_follows_the_cli_conventions():
    r = invoke("push", "--help")
    assert r.exit_code == 0
    text = " ".join(r.stdout.split())
    for flag in ("--json", "--dry-run", "--private", "--model", "--dataset", "--repo"):
        assert flag in text
