from common.metrics import score
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
    assert score([[]], [[]]).f1 == 0.0 or score([[]], [[]]).precision == 1.0
    s = score([[Span(start=0, end=5, text="Apple")]], [[]])
    assert (s.tp, s.fn, s.recall) == (0, 1, 0.0)


def test_bootstrap_ci_brackets_f1_and_errors_listed():
    gold = [[sp(0, 3)] for _ in range(50)]
    pred = [[sp(0, 3)] if i % 5 else [sp(0, 2)] for i in range(50)]
    s = score(gold, pred, texts=["ABC def"] * 50, bootstrap=200, seed=1)
    assert s.ci95[0] <= s.f1 <= s.ci95[1] and s.ci95[0] < s.ci95[1]
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
