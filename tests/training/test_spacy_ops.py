"""The matrix-product kernel spaCy's layers tag with (``training/spacy_ops.py``): numpy's BLAS
computes the same products as thinc's bundled BLIS, the setting picks the kernel (a bad value
is refused by name), and a trained pipeline finds the same entities on either."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from thinc.api import NumpyOps

from common.paths import LABELED_DIR
from common.settings import get_settings
from common.spans import LABEL
from training import spacy_ops
from training.config import SpacyOptions
from training.data import read_jsonl
from training.inference import load_tagger
from training.manifest import write_manifest
from training.spacy_trainer import PIPELINE_DIR, _blank_ner, _examples, _optimizer


@pytest.fixture
def gemm(monkeypatch):
    """Set ``TICKERTAG_SPACY_GEMM`` for one test (the choice is cached per process)."""
    def choose(value: str) -> None:
        monkeypatch.setenv(spacy_ops.GEMM_ENV, value)
        get_settings.cache_clear()
        spacy_ops.chosen_gemm.cache_clear()
    yield choose
    get_settings.cache_clear()
    spacy_ops.chosen_gemm.cache_clear()


def test_numpy_products_equal_blis_ones_for_every_transpose_and_output_buffer():
    rng = np.random.default_rng(1)
    blis, mine = NumpyOps(), spacy_ops.numpy_blas_ops()
    for t1, t2 in itertools.product([False, True], repeat=2):
        x = rng.random((7, 5) if t1 else (5, 7), dtype=np.float32)
        y = rng.random((3, 7) if t2 else (7, 3), dtype=np.float32)
        want = blis.gemm(x, y, trans1=t1, trans2=t2)
        np.testing.assert_allclose(mine.gemm(x, y, trans1=t1, trans2=t2), want, rtol=1e-5)
        out = np.zeros_like(want)
        assert mine.gemm(x, y, out=out, trans1=t1, trans2=t2) is out
        np.testing.assert_allclose(out, want, rtol=1e-5)


def test_a_bad_setting_is_refused_naming_the_variable(gemm):
    gemm("fast")
    with pytest.raises(ValueError, match="spacy_gemm"):
        spacy_ops.chosen_gemm()


def test_auto_picks_one_of_the_two(gemm):
    gemm("auto")
    assert spacy_ops.chosen_gemm() in ("numpy", "blis")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small spaCy NER trained for a few epochs on gold rows: enough to find companies."""
    o = SpacyOptions(start="blank", width=32, depth=2, embed_rows=[2000, 500, 500, 500])
    nlp = _blank_ner(o)
    nlp.get_pipe("ner").add_label(LABEL)
    examples, _ = _examples(nlp, read_jsonl(LABELED_DIR / "benzinga_gold_train.jsonl")[:400])
    opt = nlp.initialize(lambda: examples, sgd=_optimizer(nlp, o))
    for _ in range(4):
        for i in range(0, len(examples), 32):
            nlp.update(examples[i:i + 32], sgd=opt, drop=0.1)
    d = tmp_path_factory.mktemp("spacy-model")
    nlp.to_disk(d / PIPELINE_DIR)
    write_manifest(d, {"kind": "spacy", "model": PIPELINE_DIR, "entity_labels": [LABEL],
                       "threshold": 0.0})
    return d


def _layer_ops(tagger) -> set[str]:
    """The ops of the CNN's maxout layers, where the tagging time goes (the parser's resized
    output layer keeps the ops it was resized with; its scores are computed in spaCy's
    compiled code anyway)."""
    return {type(n.ops).__name__ for n in tagger.nlp.get_pipe("ner").model.walk()
            if n.name.startswith("maxout")}


def test_the_tagger_finds_the_same_entities_on_either_kernel(gemm, model_dir):
    texts = [r["text"] for r in read_jsonl(LABELED_DIR / "benzinga_gold_valid.jsonl")]
    found = {}
    for kernel in ("blis", "numpy"):
        gemm(kernel)
        tagger = load_tagger(model_dir)
        assert _layer_ops(tagger) == {"NumpyOps" if kernel == "blis" else "NumpyBlasOps"}
        found[kernel] = [[(s.start, s.end) for s in spans] for spans in tagger.predict(texts)]
        tagger.rebuild()  # a rebuilt pipeline keeps the kernel
        assert _layer_ops(tagger) == {"NumpyOps" if kernel == "blis" else "NumpyBlasOps"}
    assert sum(map(len, found["blis"])) > 50, "the model should find companies"
    assert found["numpy"] == found["blis"]
