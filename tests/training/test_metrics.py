import random

import numpy as np

from common.metrics import paired_bootstrap, score
from common.spans import Span


def sp(s, e, label="Company"):
    return {"start": s, "end": e, "label": label}


def test_exact_span_micro_prf():
    gold = [[sp(0, 6), sp(24, 32)], [], [sp(0, 5)]]
    pred = [[sp(0, 6), sp(24, 31)], [sp(3, 7)], [sp(0, 5, "company")]]
    s = score(gold, pred)
    # boundary errors count as one FP and one FN; labels compare case-insensitively
    assert (s.tp, s.fp, s.fn) == (2, 2, 1)
    assert abs(s.precision - 0.5) < 1e-9 and abs(s.recall - 2 / 3) < 1e-9
    assert abs(s.f1 - 2 * 0.5 * (2 / 3) / (0.5 + 2 / 3)) < 1e-9


def test_empty_cases_and_span_objects():
    s = score([[]], [[]])
    assert (s.tp, s.fp, s.fn, s.precision, s.recall, s.f1) == (0, 0, 0, 1.0, 1.0, 1.0)
    s = score([[Span(start=0, end=5, text="Apple")]], [[]])
    assert (s.tp, s.fn, s.recall) == (0, 1, 0.0)


def test_bootstrap_ci_brackets_f1_and_errors_listed():
    gold = [[sp(0, 3)] for _ in range(50)]
    pred = [[sp(0, 3)] if i % 5 else [sp(0, 2)] for i in range(50)]
    s = score(gold, pred, texts=["ABC def"] * 50, bootstrap=200, seed=1)
    assert s.ci95[0] <= s.f1 <= s.ci95[1] and s.ci95[0] < s.ci95[1]
    counts = [(1, 0, 0) if i % 5 else (0, 1, 1) for i in range(50)]
    assert s.ci95 == _percentile_ci(_resampled_f1(counts, counts, 200, seed=1)[0])
    assert len(s.errors) == 10 and s.errors[0]["false_positives"] == ["AB"]
    assert s.errors[0]["false_negatives"] == ["ABC"]


def test_hand_made_edge_cases():
    # nothing to find and nothing found is perfect, not 0/0
    s = score([[], []], [[], []])
    assert (s.precision, s.recall, s.f1) == (1.0, 1.0, 1.0)
    # a wrong label is a false positive and a false negative
    s = score([[sp(0, 5)]], [[sp(0, 5, "ORG")]])
    assert (s.tp, s.fp, s.fn, s.f1) == (0, 1, 1, 0.0)
    # predicting the same span twice counts it once
    s = score([[sp(0, 5)]], [[sp(0, 5), sp(0, 5)]])
    assert (s.tp, s.fp, s.fn) == (1, 0, 0)
    # only false positives on a headline without companies: F1 0, whatever 0/0 recall means
    s = score([[]], [[sp(0, 2)]])
    assert (s.tp, s.fp, s.fn, s.precision, s.f1) == (0, 1, 0, 0.0, 0.0)
    # micro, not macro: one big document dominates
    s = score([[sp(i, i + 1) for i in range(0, 18, 2)], [sp(0, 1)]],
              [[sp(i, i + 1) for i in range(0, 18, 2)], []])
    assert (s.tp, s.fn) == (9, 1) and abs(s.recall - 0.9) < 1e-9


def test_misaligned_inputs_raise_and_bootstrap_is_seeded():
    import pytest

    with pytest.raises(ValueError):
        score([[]], [[], []])
    gold = [[sp(0, 3)] for _ in range(30)]
    pred = [[sp(0, 3)] if i % 3 else [] for i in range(30)]
    a, b = score(gold, pred, bootstrap=100, seed=7), score(gold, pred, bootstrap=100, seed=7)
    assert a.ci95 == b.ci95 and a.ci95[0] <= a.f1 <= a.ci95[1]
    counts = [(1, 0, 0) if i % 3 else (0, 0, 1) for i in range(30)]
    assert a.ci95 == _percentile_ci(_resampled_f1(counts, counts, 100, seed=7)[0])


def test_align_docs_by_id_then_by_text():
    import pytest

    from training.evaluate import align_docs

    gold = [{"id": "h1", "text": "Apple Rises"}, {"id": "h2", "text": "Dow Falls"}]
    by_id = [{"id": "h2", "text": "x"}, {"id": "h1", "text": "y"}]
    assert [p["text"] for p in align_docs(gold, by_id)] == ["y", "x"]
    export = [{"id": "sha-b", "text": "Dow Falls"}, {"id": "sha-a", "text": "Apple Rises"}]
    assert [p["id"] for p in align_docs(gold, export)] == ["sha-a", "sha-b"]  # ids differ: text
    with pytest.raises(ValueError, match=r"1 gold documents have no prediction.*Dow Falls"):
        align_docs(gold, export[1:])


def test_evaluate_cli_scores_each_test_file_their_union_and_a_paired_difference(tmp_path):
    import json

    from typer.testing import CliRunner

    from common.paths import LABELED_DIR
    from tickertag.cli import _register_all, app

    if not app.registered_commands:
        _register_all()
    t1, t2 = LABELED_DIR / "benzinga_gold_test.jsonl", LABELED_DIR / "benzinga_gold_test2.jsonl"
    rows = [json.loads(x) for f in (t1, t2) for x in open(f)]
    perfect, half = tmp_path / "perfect.jsonl", tmp_path / "half.jsonl"
    perfect.write_text("".join(json.dumps(r) + "\n" for r in rows))
    half.write_text("".join(json.dumps({**r, "entities": r["entities"] if i % 2 else []}) + "\n"
                            for i, r in enumerate(rows)))
    r = CliRunner().invoke(app, ["evaluate", "--gold", str(t1), "--gold", str(t2), "--pred",
                                 str(perfect), "--against", str(half), "--json",
                                 "--bootstrap", "200"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output.strip().splitlines()[-1])
    assert [o["n_docs"] for o in out] == [208, 400, 608]
    assert all(o["f1"] == 1.0 for o in out)
    union = out[-1]["paired"]
    assert union["f1_a"] == 1.0 and union["delta"] > 0.2 and union["delta_ci95"][0] > 0
    r = CliRunner().invoke(app, ["evaluate", "--gold", str(t1), "--pred", str(half),
                                 "--against", str(perfect)])
    assert r.exit_code == 0 and "ΔF1" in r.output


# -- the bootstrap intervals, recomputed independently ----------------------------------------
#
# An interval that merely contains F1 is what min/max, the quartiles or half-size resamples
# also give, so the tests below redraw the very same resamples (the scorer draws document
# indices with ``random.Random(seed).randrange(n)``, n per resample, one resample after the
# other), compute F1 for all of them with numpy from per-document counts fixed by
# construction, and take the 2.5th / 97.5th percentiles (nearest rank below, numpy's "lower").


def _docs(counts: list[tuple[int, int, int]]) -> tuple[list[list[dict]], list[list[dict]]]:
    """Gold and predicted span lists whose per-document (tp, fp, fn) are exactly ``counts``."""
    gold, pred = [], []
    for tp, fp, fn in counts:
        g = [sp(10 * k, 10 * k + 3) for k in range(tp + fn)]
        gold.append(g)
        pred.append(g[:tp] + [sp(500 + 10 * k, 500 + 10 * k + 3) for k in range(fp)])
    return gold, pred


def _f1(sums: np.ndarray) -> np.ndarray:
    """Micro F1 of summed (tp, fp, fn) rows, the textbook way (P = R = 1 with nothing to find
    and nothing found; 0 when there is nothing right)."""
    tp, fp, fn = (sums[:, k].astype(float) for k in range(3))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(tp + fp > 0, tp / (tp + fp), np.where(fn == 0, 1.0, 0.0))
        r = np.where(tp + fn > 0, tp / (tp + fn), np.where(fp == 0, 1.0, 0.0))
        return np.where(p + r > 0, 2 * p * r / (p + r), 0.0)


def _resampled_f1(counts_a, counts_b, n_resamples: int, seed: int):
    """F1 of systems a and b on each of the scorer's resamples (the same documents for both)."""
    rng = random.Random(seed)
    n = len(counts_a)
    idx = np.array([[rng.randrange(n) for _ in range(n)] for _ in range(n_resamples)])
    a, b = np.array(counts_a), np.array(counts_b)
    return _f1(a[idx].sum(axis=1)), _f1(b[idx].sum(axis=1))


def _percentile_ci(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.quantile(values, [0.025, 0.975], method="lower")
    return float(lo), float(hi)


# 40 documents with uneven errors, so resampled F1 spreads widely and its percentiles, extremes
# and quartiles all differ
COUNTS_A = [(i % 3, int(i % 4 == 0), int(i % 5 == 0)) for i in range(40)]
# system b misses a span a finds on 4 documents, avoids a's false positive on 5 and adds one on
# 5 others: a is better, but not on every resample
COUNTS_B = [(tp - int(i % 12 == 1), fp - int(i % 8 == 4) + int(i % 9 == 0), fn + int(i % 12 == 1))
            for i, (tp, fp, fn) in enumerate(COUNTS_A)]


def test_bootstrap_ci_is_the_percentile_interval_of_full_size_resamples():
    gold, pred = _docs(COUNTS_A)
    s = score(gold, pred, bootstrap=1000, seed=3)
    assert (s.tp, s.fp, s.fn) == tuple(np.array(COUNTS_A).sum(axis=0))
    fs, _ = _resampled_f1(COUNTS_A, COUNTS_A, 1000, seed=3)
    expected = _percentile_ci(fs)
    # the data tells the right interval from the wrong ones a planted bug would give
    assert expected[0] > fs.min() and expected[1] < fs.max()
    assert expected != tuple(np.quantile(fs, [0.25, 0.75], method="lower"))
    assert s.ci95 == expected
    assert score(gold, pred, bootstrap=1000, seed=4).ci95 == _percentile_ci(
        _resampled_f1(COUNTS_A, COUNTS_A, 1000, seed=4)[0])


def test_paired_bootstrap_ci_and_p_value_are_those_of_the_paired_resamples():
    gold, pred_a = _docs(COUNTS_A)
    gold_b, pred_b = _docs(COUNTS_B)
    assert gold_b == gold  # the same gold, two systems
    d = paired_bootstrap(gold, pred_a, pred_b, n=1000, seed=5)
    fa, fb = _resampled_f1(COUNTS_A, COUNTS_B, 1000, seed=5)
    deltas = fa - fb
    full_a = _f1(np.array(COUNTS_A).sum(axis=0, keepdims=True))[0]
    full_b = _f1(np.array(COUNTS_B).sum(axis=0, keepdims=True))[0]
    assert (d.f1_a, d.f1_b, d.n_docs) == (full_a, full_b, 40)
    assert d.delta == full_a - full_b
    expected = _percentile_ci(deltas)
    assert expected[0] > deltas.min() and expected[1] < deltas.max()
    assert expected != tuple(np.quantile(deltas, [0.25, 0.75], method="lower"))
    assert d.ci95 == expected
    assert d.p_not_better == float(np.mean(deltas <= 0))
    assert 0 < d.p_not_better < 1  # a close race: the share is a real number, not 0 or 1


def test_span_keys_lower_case_labels():
    from common.metrics import span_keys

    assert span_keys([sp(0, 5, "COMPANY"), Span(start=6, end=9, text="Inc")]) == {
        (0, 5, "company"), (6, 9, "company")}


def test_nothing_found_or_only_false_positives_score_zero_not_one():
    s = score([[sp(0, 5)]], [[]])  # a company missed, nothing predicted
    assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)
    s = score([[]], [[sp(0, 5)]])  # nothing to find, something predicted
    assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)


def test_score_as_dict_errors_and_defaults():
    gold, pred = [[sp(0, 3)], [sp(4, 7)]], [[sp(0, 3)], [sp(4, 6)]]
    s = score(gold, pred, texts=["ABC", "xyz DEF"])
    assert s.ci95 is None  # no bootstrap unless asked
    assert s.as_dict() == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "tp": 1, "fp": 1, "fn": 1,
                           "n_docs": 2, "f1_ci95": None}
    assert s.errors == [{"doc": 1, "text": "xyz DEF", "false_positives": ["DE"],
                         "false_negatives": ["DEF"]}]
    b = score(gold, pred, bootstrap=50)
    assert b.as_dict()["f1_ci95"] == list(b.ci95)
    gold40, pred40 = _docs(COUNTS_A)  # enough documents for seeds to give different intervals
    assert score(gold40, pred40, bootstrap=50).ci95 == score(gold40, pred40, bootstrap=50,
                                                             seed=0).ci95  # the default seed
    assert score(gold40, pred40, bootstrap=50, seed=1).ci95 != score(gold40, pred40,
                                                                     bootstrap=50).ci95
    import pytest

    with pytest.raises(ValueError, match="1 gold documents but 2 predicted"):
        score([[]], [[], []])


def test_paired_bootstrap_defaults_dict_and_refusals():
    import pytest

    gold, pred_a = _docs(COUNTS_A)
    _, pred_b = _docs(COUNTS_B)
    d = paired_bootstrap(gold, pred_a, pred_b)
    assert d == paired_bootstrap(gold, pred_a, pred_b, n=1000, seed=0)
    assert d.as_dict() == {"f1_a": d.f1_a, "f1_b": d.f1_b, "delta": d.delta,
                           "delta_ci95": list(d.ci95), "p_not_better": d.p_not_better,
                           "n_docs": 40}
    with pytest.raises(ValueError, match="no documents to compare"):
        paired_bootstrap([], [], [])
    with pytest.raises(ValueError):  # a system with a document missing is not compared
        paired_bootstrap(gold, pred_a[:-1], pred_b)


def test_small_bootstrap_takes_the_nearest_rank_below():
    """With 41 resamples the 2.5th percentile is the 2nd smallest value (index 0.025 x 40 = 1),
    a rank that a slightly different formula misses."""
    gold, pred = _docs(COUNTS_A)
    fs, _ = _resampled_f1(COUNTS_A, COUNTS_A, 41, seed=2)
    assert sorted(fs)[0] != sorted(fs)[1]
    assert score(gold, pred, bootstrap=41, seed=2).ci95 == _percentile_ci(fs)
    _, pred_b = _docs(COUNTS_B)
    fa, fb = _resampled_f1(COUNTS_A, COUNTS_B, 41, seed=2)
    assert sorted(fa - fb)[0] != sorted(fa - fb)[1]
    assert paired_bootstrap(gold, pred, pred_b, n=41, seed=2).ci95 == _percentile_ci(fa - fb)
