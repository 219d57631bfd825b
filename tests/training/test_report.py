import json
from pathlib import Path

from common.paths import LABELED_DIR
from training.baselines import build_gazetteer, build_spacy
from training.learning_curve import paired_sets, summarise
from training.report import build_report


def test_report_compares_systems_with_plots(tmp_path: Path):
    build_gazetteer([str(LABELED_DIR / "benzinga_gold_train.jsonl")], str(tmp_path / "gz"))
    build_spacy(str(tmp_path / "sp"))
    curve = tmp_path / "curve.json"
    curve.write_text('[{"source": "reviewed", "n": 100, "seed": 0, "test_f1": 0.8},'
                     '{"source": "llm", "n": 100, "seed": 0, "test_f1": 0.75}]')
    seed1 = tmp_path / "curve-seed1.json"  # another host's seeds: pooled with the first file
    seed1.write_text('[{"source": "reviewed", "n": 100, "seed": 1, "test_f1": 0.7}]')
    md = build_report({"gazetteer": str(tmp_path / "gz"), "spacy ORG": str(tmp_path / "sp")},
                      str(LABELED_DIR / "benzinga_gold_test.jsonl"), str(tmp_path / "rep"),
                      llm_pred=str(LABELED_DIR / "benzinga_llm_test.jsonl"),
                      llm_headlines_per_s=31.0, curve_json=[str(curve), str(seed1)])
    text = md.read_text()
    assert "| gazetteer |" in text and "| spacy ORG |" in text and "| LLM labels |" in text
    for png in ("f1.png", "cost.png", "learning_curve.png"):
        assert (tmp_path / "rep" / png).stat().st_size > 1000
    assert "| reviewed | 100 | 0.750 | 0.071 | 2 |" in text  # mean and std over both files
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "<th>system</th>" in page and "<td>gazetteer</td>" in page
    assert '<img src="f1.png"' in page  # markdown-it adds alt=

    # re-rendered from the first report.json with a longer curve: gazetteer re-measured, spaCy
    # and the LLM row kept as measured then, each system once
    curve.write_text('[{"source": "reviewed", "n": 200, "seed": 0, "test_f1": 0.9}]')
    md2 = build_report({"gazetteer": str(tmp_path / "gz")},
                       str(LABELED_DIR / "benzinga_gold_test.jsonl"), str(tmp_path / "rep2"),
                       curve_json=[str(curve)], reuse=str(tmp_path / "rep" / "report.json"))
    text2 = md2.read_text()
    for name in ("gazetteer", "spacy ORG", "LLM labels"):
        assert text2.count(f"| {name} |") == 1, name
    spacy_row = [ln for ln in text.splitlines() if ln.startswith("| spacy ORG |")]
    assert spacy_row and spacy_row[0] in text2  # the kept row is the earlier measurement
    assert "| reviewed | 200 | 0.900 |" in text2


def test_learning_curve_pairs_and_summary(tmp_path: Path):
    gold_path = str(LABELED_DIR / "benzinga_gold_train.jsonl")
    gold, llm = paired_sets(gold_path, str(LABELED_DIR / "benzinga_llm_train.jsonl"))
    assert len(gold) == len(llm) == 1335
    assert all(g["id"] == x["id"] and g["text"] == x["text"] for g, x in zip(gold, llm, strict=True))
    # an annotation export of part of the headlines: its own (text-hash) ids, its own order
    export = tmp_path / "export.jsonl"
    export.write_text("".join(json.dumps({"id": f"h{i}", "text": g["text"], "entities": []}) + "\n"
                              for i, g in enumerate(reversed(gold[:3]))))
    g3, l3 = paired_sets(gold_path, str(export))
    assert [g["text"] for g in g3] == [x["text"] for x in l3] == [g["text"] for g in gold[:3]]
    s = summarise([{"source": "llm", "n": 5, "test_f1": 0.5},  # an old log: no device = cpu
                   {"source": "llm", "n": 5, "test_f1": 0.7, "device": "cuda"}])
    assert s[0]["runs"] == 2 and abs(s[0]["mean"] - 0.6) < 1e-9 and s[0]["std"] > 0
    assert s[0]["devices"] == "cpu,cuda"


def test_report_on_two_test_files_with_pairs_frontier_and_silver_curve(tmp_path: Path):
    import shutil

    build_gazetteer([str(LABELED_DIR / "benzinga_gold_train.jsonl")], str(tmp_path / "gz"))
    build_spacy(str(tmp_path / "sp"))
    students = {}
    for n in (0, 500):  # a student directory records its silver-set size in its manifest
        d = tmp_path / f"st{n}"
        shutil.copytree(tmp_path / "gz", d)
        m = json.loads((d / "tickertag.json").read_text())
        (d / "tickertag.json").write_text(json.dumps({**m, "distil": {"silver_headlines": n}}))
        students[f"student {n}"] = str(d)
    tests = [str(LABELED_DIR / "benzinga_gold_test.jsonl"),
             str(LABELED_DIR / "benzinga_gold_test2.jsonl")]
    from linking.build import build_table
    from linking.evaluate import evaluate_table, report_figures
    from linking.table import AliasTable

    aliases = build_table([LABELED_DIR / "benzinga_gold_train.jsonl"]).save(tmp_path / "al.json")
    md = build_report({"gazetteer": str(tmp_path / "gz"), "spacy ORG": str(tmp_path / "sp")},
                      tests, str(tmp_path / "rep"),
                      llm_pred=str(LABELED_DIR / "benzinga_llm_test.jsonl"),
                      llm_headlines_per_s=31.0, pairs=[("gazetteer", "spacy ORG")],
                      silver_curve=students, linking=report_figures(aliases, tests))
    text = md.read_text()
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    gz = next(r for r in rep["systems"] if r["system"] == "gazetteer")
    assert gz["n_docs"] == 608 and set(gz["f1_by_file"]) == {"benzinga_gold_test.jsonl",
                                                             "benzinga_gold_test2.jsonl"}
    llm = next(r for r in rep["systems"] if r["system"] == "LLM labels")
    assert llm["n_docs"] == 208 and "benzinga_gold_test2.jsonl" not in llm["f1_by_file"]
    assert "not measured here" in text and "| F1 benzinga_gold_test2.jsonl |" in text
    (pair,) = rep["pairs"]
    assert pair["n_docs"] == 608 and pair["delta"] > 0 and pair["delta_ci95"][0] > 0
    assert [r["silver_headlines"] for r in rep["silver_curve"]] == [0, 500]
    for png in ("f1.png", "cost.png", "frontier.png", "silver_curve.png"):
        assert (tmp_path / "rep" / png).stat().st_size > 1000
    assert str(tmp_path) not in text  # no absolute paths of this machine in the report
    assert "## Linking names to tickers" in text
    fresh = evaluate_table(AliasTable.load(aliases), tests)  # the same table, scored afresh
    assert rep["linking"]["spans"] == fresh["spans"] == 713
    assert rep["linking"]["linked_spans"] == fresh["linked_spans"] > 0
    assert rep["linking"]["coverage"] == fresh["coverage"] == round(
        fresh["linked_spans"] / fresh["spans"], 4)
    assert f"| {fresh['coverage']:.3f} | {fresh['linked_spans']}/713 |" in text

    # a report that reuses this one keeps the rows and the silver curve it does not remeasure
    build_report({"gazetteer": str(tmp_path / "gz")}, tests, str(tmp_path / "rep2"),
                 reuse=str(tmp_path / "rep" / "report.json"))
    rep2 = json.loads((tmp_path / "rep2" / "report.json").read_text())
    assert {r["system"] for r in rep2["systems"]} == {r["system"] for r in rep["systems"]}
    assert rep2["silver_curve"] == rep["silver_curve"]
