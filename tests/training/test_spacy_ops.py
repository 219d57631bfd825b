"""The matrix-product kernel spaCy's layers tag with (``training/spacy_ops.py``): numpy's BLAS
computes the same products as thinc's bundled BLIS, the setting picks the kernel (a bad value
is refused by name), and a trained pipeline finds the same entities on either."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
from thinc.api import NumpyOps

from common.paths import CODE_ROOT, LABELED_DIR
from training import spacy_ops
from training.config import TrainConfig
from training.data import read_jsonl
from training.inference import load_tagger
from training.runner import run_training


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


def test_a_bad_setting_is_refused_naming_the_variable():
    with spacy_ops.forced_gemm("fast"), pytest.raises(ValueError, match="spacy_gemm"):
        spacy_ops.chosen_gemm()


def test_auto_picks_one_of_the_two():
    with spacy_ops.forced_gemm("auto"):
        assert spacy_ops.chosen_gemm() in ("numpy", "blis")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small spaCy NER trained by the project's trainer on 400 gold rows: enough to find
    companies."""
    out = tmp_path_factory.mktemp("spacy-model")
    run_training(TrainConfig(kind="spacy", output=str(out), max_train=400, epochs=4,
                             spacy={"start": "blank", "width": 32, "depth": 2,
                                    "embed_rows": [2000, 500, 500, 500]}))
    return out


def _layer_ops(tagger) -> set[str]:
    """The ops of the CNN's maxout layers, where the tagging time goes (the parser's resized
    output layer keeps the ops it was resized with; its scores are computed in spaCy's
    compiled code anyway)."""
    return {type(n.ops).__name__ for n in tagger.nlp.get_pipe("ner").model.walk()
            if n.name.startswith("maxout")}


def test_the_tagger_finds_the_same_entities_on_either_kernel(model_dir):
    texts = [r["text"] for r in read_jsonl(LABELED_DIR / "benzinga_gold_valid.jsonl")]
    found = {}
    for kernel in ("blis", "numpy"):
        want = {"NumpyOps" if kernel == "blis" else "NumpyBlasOps"}
        with spacy_ops.forced_gemm(kernel):
            tagger = load_tagger(model_dir)
            assert _layer_ops(tagger) == want
            found[kernel] = [[(s.start, s.end) for s in doc] for doc in tagger.predict(texts)]
            tagger.rebuild()  # a rebuilt pipeline keeps the kernel
            assert _layer_ops(tagger) == want
    assert sum(map(len, found["blis"])) > 50, "the model should find companies"
    assert found["numpy"] == found["blis"]


def test_threads_1_leaves_every_pool_the_model_loaded_at_one_thread(model_dir):
    """``load_tagger(threads=1)`` (the service's and the bulk workers' setting) caps the thread
    pools that loading the model brought in too (scipy's own OpenBLAS, OpenMP runtimes), not
    only numpy's: their idle threads spin and took the event loops' cores under load. In a
    fresh process, since the caps are process-wide."""
    code = ("import json, sys; from threadpoolctl import threadpool_info; "
            "from training.inference import load_tagger; t = load_tagger(sys.argv[1], 1); "
            "t.predict(['Apple Rises']); "
            "print(json.dumps([[p['internal_api'], p['num_threads']] for p in threadpool_info()]))")
    out = subprocess.run([sys.executable, "-c", code, str(model_dir)], capture_output=True,
                         text=True, check=True, cwd=CODE_ROOT).stdout
    pools = json.loads(out.strip().splitlines()[-1])
    assert pools, "threadpoolctl should see numpy's BLAS at least"
    assert [p for p in pools if p[1] != 1] == []
