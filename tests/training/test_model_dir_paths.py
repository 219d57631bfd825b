"""A model directory is data: nothing it names, directly or through a link, may make a loader
open files outside it.

The directories here are tiny spaCy pipelines (a blank English pipeline with an entity ruler
that knows one name) under a hand-written manifest, the shape ``tickertag train spacy`` writes:
``tickertag.json`` next to a ``pipeline/`` directory.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from common.spans import LABEL, Span
from training.inference import load_tagger, servable_manifest
from training.manifest import MANIFEST, UnsafeModelDir

TEXT = "Acme Beats Estimates"
ACME = [[Span(start=0, end=4, label=LABEL, text="Acme", score=None)]]


def _pipeline(path: Path, name: str = "Acme") -> None:
    """A spaCy pipeline at ``path`` whose only component tags ``name`` as a company."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": LABEL, "pattern": name}])
    path.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(path)


def _manifest(model_dir: Path, **fields: object) -> None:
    m = {"kind": "spacy", "family": "spacy.v1", "model": "pipeline", "entity_labels": [LABEL],
         "threshold": 0.0, **fields}
    (model_dir / MANIFEST).write_text(json.dumps(m))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """One pipeline, built once: each test copies it (spaCy's first save takes seconds)."""
    src = tmp_path_factory.mktemp("src") / "pipeline"
    _pipeline(src)
    return src


@pytest.fixture
def model_dir(tmp_path: Path, built: Path) -> Path:
    d = tmp_path / "model"
    shutil.copytree(built, d / "pipeline")
    _manifest(d)
    return d


def _refused(model_dir: Path, *named: object) -> str:
    """The error ``load_tagger`` and ``servable_manifest`` raise, checked to name ``named``."""
    with pytest.raises(UnsafeModelDir) as early:
        servable_manifest(model_dir)
    with pytest.raises(UnsafeModelDir) as err:
        load_tagger(model_dir)
    msg = str(err.value)
    assert str(early.value) == msg
    assert isinstance(err.value, ValueError)
    for part in (model_dir, *named):
        assert str(part) in msg, (part, msg)
    return msg


def test_an_ordinary_spacy_model_dir_loads_and_tags(model_dir: Path) -> None:
    assert servable_manifest(model_dir)["model"] == "pipeline"
    assert load_tagger(model_dir).predict([TEXT]) == ACME


def test_a_link_that_stays_inside_the_model_dir_is_fine(model_dir: Path) -> None:
    (model_dir / "pipeline").rename(model_dir / "pipeline-v2")
    (model_dir / "pipeline").symlink_to("pipeline-v2", target_is_directory=True)
    assert load_tagger(model_dir).predict([TEXT]) == ACME


def test_a_pipeline_dir_linked_in_from_outside_is_refused(model_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "pipeline"
    outside.parent.mkdir()
    shutil.move(model_dir / "pipeline", outside)
    (model_dir / "pipeline").symlink_to(outside, target_is_directory=True)
    msg = _refused(model_dir, model_dir / "pipeline", outside)
    assert "outside the model directory" in msg


def test_a_file_inside_the_pipeline_linked_from_outside_is_refused(model_dir: Path,
                                                                   tmp_path: Path) -> None:
    patterns = model_dir / "pipeline" / "entity_ruler" / "patterns.jsonl"
    outside = tmp_path / "patterns.jsonl"
    shutil.move(patterns, outside)
    patterns.symlink_to(outside)
    _refused(model_dir, patterns, outside)


def test_a_linked_manifest_is_refused_before_it_is_read(model_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "manifest.json"
    shutil.move(model_dir / MANIFEST, outside)
    (model_dir / MANIFEST).symlink_to(outside)
    _refused(model_dir, model_dir / MANIFEST, outside)


@pytest.mark.parametrize(("kind", "field", "value"), [
    ("spacy", "model", "../outside"),
    ("spacy", "model", "pipeline/../../outside"),
    ("gliner-onnx", "onnx_file", "../outside/model.onnx"),
    ("gliner-onnx", "onnx_file", "/tmp/model.onnx"),
])
def test_a_manifest_naming_a_path_outside_is_refused(model_dir: Path, tmp_path: Path, kind: str,
                                                     field: str, value: str) -> None:
    """Refused by ``servable_manifest``, before the family's loader imports anything."""
    shutil.copytree(model_dir / "pipeline", tmp_path / "outside")
    (tmp_path / "outside" / "model.onnx").write_bytes(b"not a graph")
    _manifest(model_dir, kind=kind, family=f"{kind}.v1", **{field: value})
    msg = _refused(model_dir, repr(field), repr(value))
    assert "outside the model directory" in msg


def test_a_manifest_naming_a_pipeline_that_is_not_there_is_refused(
        model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that is neither a directory of the model nor an installed pipeline: spaCy would
    look for it relative to the working directory, outside the model."""
    _pipeline(tmp_path / "cwd" / "not_installed_pipeline", name="Elsewhere")
    monkeypatch.chdir(tmp_path / "cwd")
    _manifest(model_dir, model="not_installed_pipeline")
    msg = _refused(model_dir, "'not_installed_pipeline'")
    assert "neither a directory in the model directory nor an installed spaCy pipeline" in msg


def test_a_pipeline_config_sourcing_a_component_from_outside_is_refused(
        model_dir: Path, tmp_path: Path) -> None:
    """spaCy loads a ``source`` pipeline named in ``config.cfg`` before the pipeline's own files."""
    outside = tmp_path / "outside-pipeline"
    _pipeline(outside, name="Elsewhere")
    cfg = model_dir / "pipeline" / "config.cfg"
    text = cfg.read_text()
    head = '[components.entity_ruler]\nfactory = "entity_ruler"\n'
    assert head in text
    cfg.write_text(text.replace(head, f'[components.entity_ruler]\nsource = "{outside}"\n'))
    msg = _refused(model_dir, "components.entity_ruler.source", outside)
    assert "pipeline config" in msg


def test_an_installed_pipeline_by_name_still_loads(tmp_path: Path) -> None:
    """The zero-shot baseline names an installed package, not a path: that stays allowed."""
    from training.baselines import build_spacy

    d = tmp_path / "baseline"
    build_spacy(str(d))
    tagger = load_tagger(d)
    assert tagger.kind == "spacy"
    assert tagger.predict([""]) == [[]]
