"""The project's bootstrap CI of F1 (``common.metrics.score``: headlines resampled with
replacement, micro F1 of each resample, the 2.5th and 97.5th percentiles) agrees with
``scipy.stats.bootstrap``'s percentile method on the shipped test files, within 0.002.

The prediction is fixed and real: the gazetteer baseline built from the gold train file
(deterministic, F1 well inside (0, 1), so neither bound sits on a boundary). Both sides draw
10,000 resamples; the two estimates of each percentile then differ by Monte Carlo noise only,
well under 0.002 (a wrong percentile index or a per-headline average instead of the micro F1
moves a bound by more)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.metrics import score, span_keys
from common.paths import LABELED_DIR
from training.data import read_jsonl, spans_of

RESAMPLES = 10_000
TOLERANCE = 0.002
TESTS = [LABELED_DIR / "benzinga_gold_test.jsonl", LABELED_DIR / "benzinga_gold_test2.jsonl"]


@pytest.fixture(scope="module")
def predict(tmp_path_factory: pytest.TempPathFactory):
    from training.baselines import build_gazetteer
    from training.inference import load_tagger

    d = tmp_path_factory.mktemp("gz") / "gazetteer"
    build_gazetteer([str(LABELED_DIR / "benzinga_gold_train.jsonl")], str(d))
    tagger = load_tagger(d)
    return lambda texts: tagger.predict(texts, None, 64)


def scipy_ci(gold: list, pred: list) -> tuple[float, float]:
    """scipy.stats.bootstrap, percentile method, over headlines: each resample's micro F1 from
    the per-headline true positives, false positives and false negatives."""
    from scipy.stats import bootstrap

    counts = np.array([(len(g & p), len(p - g), len(g - p))
                       for g, p in ((span_keys(g), span_keys(p)) for g, p in zip(gold, pred,
                                                                                 strict=True))])

    def micro_f1(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        tp, fp, fn = (counts[idx, k].sum(axis=axis) for k in range(3))
        return 2 * tp / (2 * tp + fp + fn)

    res = bootstrap((np.arange(len(counts)),), micro_f1, n_resamples=RESAMPLES,
                    method="percentile", confidence_level=0.95, vectorized=True, batch=1000,
                    random_state=np.random.default_rng(0))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@pytest.mark.parametrize("files", [TESTS[:1], TESTS[1:], TESTS],
                         ids=["test", "test2", "test+test2"])
def test_bootstrap_ci_agrees_with_scipy(files: list[Path], predict):
    rows = [r for f in files for r in read_jsonl(f)]
    gold = [spans_of(r) for r in rows]
    pred = predict([r["text"] for r in rows])
    ours = score(gold, pred, bootstrap=RESAMPLES, seed=0)
    assert 0.5 < ours.f1 < 0.99 and ours.ci95 is not None
    lo, hi = scipy_ci(gold, pred)
    assert lo < ours.f1 < hi
    assert abs(ours.ci95[0] - lo) <= TOLERANCE and abs(ours.ci95[1] - hi) <= TOLERANCE, \
        (ours.ci95, (lo, hi))
